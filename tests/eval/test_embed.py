"""Embedding extraction: chunk averaging of long inputs, resumable cache, durations, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spkpeft.eval.embed import chunk_starts, extract_embeddings

SR = 100  # a small sample rate keeps the tensors tiny; the code only uses it to convert seconds


class CountingEmbed:
    """embed(wav, lengths) -> [mean of the real samples, real length, padded width]; counts calls/rows."""

    def __init__(self) -> None:
        self.calls = 0
        self.rows = 0
        self.widths: list[int] = []

    def __call__(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.rows += wav.shape[0]
        self.widths.append(wav.shape[1])
        mask = torch.arange(wav.shape[1])[None, :] < lengths[:, None]
        mean = (wav * mask).sum(1) / lengths
        return torch.stack([mean, lengths.float(), torch.full_like(mean, wav.shape[1])], dim=1)


def _batches(lengths_per_batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    out, k = [], 0
    for lengths in lengths_per_batch:
        wav = torch.zeros(len(lengths), max(lengths))
        for i, n in enumerate(lengths):
            wav[i, :n] = torch.rand(n, generator=g)
        out.append(
            {"wav": wav, "lengths": torch.tensor(lengths), "ids": [f"u{k + i}" for i in range(len(lengths))]}
        )
        k += len(lengths)
    return out


def test_chunk_starts():
    assert chunk_starts(10, 20, 18) == [0]
    assert chunk_starts(20, 20, 18) == [0]
    assert chunk_starts(50, 20, 18) == [0, 18, 30]  # last window aligned to the end
    assert chunk_starts(38, 20, 18) == [0, 18]


def test_long_input_is_chunk_averaged():
    embed = CountingEmbed()
    lengths = [50 * SR, 3 * SR]  # 50 s and 3 s
    batches = _batches([lengths])
    table = extract_embeddings(embed, batches, chunk_seconds=20, overlap_seconds=2, sample_rate=SR)
    wav = batches[0]["wav"][0]
    want = np.mean([wav[s * SR : (s + 20) * SR].mean().item() for s in (0, 18, 30)])
    assert table.vectors[0, 0] == pytest.approx(want, rel=1e-5)
    assert table.vectors[0, 1] == 20 * SR  # every window was a full 20 s
    assert max(embed.widths) == 20 * SR  # the model never saw more than one window
    # 1 call for the short row + 3 windows in sub-batches of at most the batch size (2): 2 calls
    assert embed.calls == 3 and embed.rows == 4
    # the short row is embedded trimmed to its own length, not the 50 s padding
    assert table.vectors[1, 2] == 3 * SR
    assert table.vectors[1, 0] == pytest.approx(batches[0]["wav"][1, : 3 * SR].mean().item(), rel=1e-5)
    np.testing.assert_allclose(table.durations, [50.0, 3.0])


def test_cache_reuse_and_resume(tmp_path):
    batches = _batches([[120, 80], [100, 90, 60], [70]])
    first = CountingEmbed()
    # an interrupted run: only the first two batches, flushed after every batch
    part = extract_embeddings(first, batches[:2], cache_path=tmp_path / "c", sample_rate=SR, flush_every=1)
    assert len(part) == 5 and first.rows == 5
    second = CountingEmbed()
    full = extract_embeddings(second, batches, cache_path=tmp_path / "c", sample_rate=SR)
    assert second.rows == 1  # only u5 was missing
    assert full.ids == [f"u{i}" for i in range(6)]
    third = CountingEmbed()
    again = extract_embeddings(third, batches, cache_path=tmp_path / "c", sample_rate=SR)
    assert third.calls == 0
    np.testing.assert_array_equal(again.vectors, full.vectors)
    np.testing.assert_allclose(again.durations, [1.2, 0.8, 1.0, 0.9, 0.6, 0.7])
    nocache = extract_embeddings(CountingEmbed(), batches, sample_rate=SR)
    np.testing.assert_allclose(nocache.vectors, full.vectors, rtol=1e-6)


def test_cache_key_mismatch_is_an_error(tmp_path):
    batches = _batches([[50, 60]])
    extract_embeddings(CountingEmbed(), batches, cache_path=tmp_path, sample_rate=SR, cache_key="model-a")
    with pytest.raises(ValueError, match="model-a"):
        extract_embeddings(CountingEmbed(), batches, cache_path=tmp_path, sample_rate=SR, cache_key="model-b")


def test_non_finite_embeddings_are_never_cached(tmp_path):
    batches = _batches([[50, 60], [40, 70]])
    batches[1]["wav"][1, 3] = float("nan")  # u3: the mean of its samples is NaN
    with pytest.raises(ValueError, match=r"non-finite embeddings of \['u3'\]"):
        extract_embeddings(CountingEmbed(), batches, cache_path=tmp_path / "c", sample_rate=SR, flush_every=1)
    batches[1]["wav"][1, 3] = 0.5  # the fixed input is embedded, not read back from the cache
    table = extract_embeddings(CountingEmbed(), batches, cache_path=tmp_path / "c", sample_rate=SR)
    assert np.isfinite(table.vectors).all() and table.ids == ["u0", "u1", "u2", "u3"]


def test_duplicate_ids_are_embedded_once():
    b = _batches([[50, 60]])[0]
    b["ids"] = ["x", "x"]
    embed = CountingEmbed()
    table = extract_embeddings(embed, [b, dict(b)], sample_rate=SR)
    assert table.ids == ["x"] and embed.rows == 1


def test_bad_batches():
    b = _batches([[50]])[0]
    with pytest.raises(KeyError, match="ids"):
        extract_embeddings(CountingEmbed(), [{"wav": b["wav"], "lengths": b["lengths"]}], sample_rate=SR)
    with pytest.raises(ValueError, match="empty"):
        extract_embeddings(CountingEmbed(), [], sample_rate=SR)
    with pytest.raises(ValueError, match=r"\(B=1, E\)"):
        extract_embeddings(lambda w, n: torch.zeros(3), [b], sample_rate=SR)
