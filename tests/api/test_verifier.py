"""SpeakerVerifier and the embed / embed-file / verify commands: caching, consistency, inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from spkpeft.cli import main


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_embed_command_caches_and_second_call_computes_nothing(
    lora_run: Path, corpus: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # noqa: ANN001
    from spkpeft.eval.embed import ChunkSettings, cache_key, model_fingerprint
    from spkpeft.eval.embedding_cache import EmbeddingCache
    from spkpeft.model import SpeakerModel

    out = tmp_path / "emb"
    assert main(["embed", str(lora_run), str(corpus["test"]), str(out)]) == 0
    assert "9 embeddings of dimension 32" in capsys.readouterr().out
    key = cache_key(model_fingerprint(lora_run / "model"), ChunkSettings())
    first = EmbeddingCache(out, key)
    assert len(first.vectors) == 9

    def boom(self, wav, lengths=None):  # noqa: ANN001
        raise AssertionError("cached: nothing may be embedded")

    monkeypatch.setattr(SpeakerModel, "embed", boom)
    assert main(["embed", str(lora_run), str(corpus["test"]), str(out)]) == 0
    assert sorted(out.glob("emb-*.safetensors")) == [out / "emb-00000.safetensors"]  # no new shard
    # a cache written by another model (or other chunk settings) is refused, not reused
    assert main(["embed", str(lora_run), str(corpus["test"]), str(out), "--chunk-seconds", "5"]) == 1
    assert "cache_key" in capsys.readouterr().err


def test_verifier_embedding_equals_the_batched_manifest_embedding(lora_run: Path, corpus: dict) -> None:
    from spkpeft import SpeakerVerifier
    from spkpeft.eval.embed import ChunkSettings, embed_manifest

    v = SpeakerVerifier.from_pretrained(lora_run, device="cpu")
    table = embed_manifest(v.model, corpus["test"], None, "k", ChunkSettings(), batch_size=4)
    one = v.embed(corpus["root"] / "test" / "spk6" / "utt2.wav")
    ref = table.vectors[table.ids.index("spk6/utt2")]
    assert np.linalg.norm(one - ref) / np.linalg.norm(ref) < 1e-4  # padding in a batch changes nothing


def test_long_input_is_the_mean_of_its_windows(lora_run: Path) -> None:
    import torch

    from spkpeft import SpeakerVerifier

    v = SpeakerVerifier.from_pretrained(lora_run, device="cpu", chunk_seconds=0.5, overlap_seconds=0.1)
    wav = np.random.default_rng(0).normal(0, 0.1, 20000).astype(np.float32)  # 1.25 s
    starts = [0, 6400, 20000 - 8000]  # hop 0.4 s; the last window ends at the end
    wins = torch.from_numpy(np.stack([wav[s : s + 8000] for s in starts]))
    ref = v.model.embed(wins, torch.full((3,), 8000)).mean(0).numpy()
    got = v.embed(wav, sample_rate=16000)
    assert np.allclose(got, ref, atol=1e-5)


def test_stereo_and_other_sample_rates_are_converted(lora_run: Path, corpus: dict, tmp_path: Path) -> None:
    from spkpeft import SpeakerVerifier

    v = SpeakerVerifier.from_pretrained(lora_run, device="cpu")
    src = corpus["root"] / "test" / "spk5" / "utt1.wav"
    mono, sr = sf.read(src, dtype="float32")
    ref = v.embed(src)
    up = soxr.resample(mono, sr, 44100)
    stereo = tmp_path / "stereo44k.flac"
    sf.write(stereo, np.stack([up, up], axis=1), 44100)
    assert _cos(v.embed(stereo), ref) > 0.99
    assert _cos(v.embed(np.stack([up, up], axis=1), sample_rate=44100), ref) > 0.99
    with pytest.raises(ValueError, match="sample_rate"):
        v.embed(mono)
    with pytest.raises(ValueError, match="sample_rate is only for array"):
        v.embed(src, sample_rate=16000)


def test_missing_file_is_an_error_naming_it(lora_run: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    missing = tmp_path / "nope.wav"
    assert main(["verify", str(missing), str(missing), "--model", str(lora_run)]) == 1
    assert str(missing) in capsys.readouterr().err


def test_unevaluated_model_scores_cosine_without_a_decision(
    lora_run: Path, corpus: dict, tmp_path: Path
) -> None:
    import shutil

    from spkpeft import SpeakerVerifier

    # the model alone, without the scorer an evaluation saves in it
    shutil.copytree(lora_run / "model", tmp_path / "model", ignore=shutil.ignore_patterns("scoring"))
    v = SpeakerVerifier.from_pretrained(tmp_path / "model", device="cpu")
    r = v.verify(corpus["root"] / "test" / "spk5" / "utt0.wav", corpus["root"] / "test" / "spk5" / "utt1.wav")
    assert r.decision is None and r.threshold is None and r.system == "cosine"
    assert r.score == pytest.approx(r.raw_cosine, abs=1e-5)  # no mean, no cohort: plain cosine


def test_verify_cli_text_and_json(evaluated_run: Path, corpus: dict, capsys) -> None:  # noqa: ANN001
    from spkpeft.eval.metrics import bayes_threshold

    a, b = (str(corpus["root"] / "test" / "spk7" / f"utt{n}.wav") for n in (0, 1))
    assert main(["-q", "verify", a, b, "--model", str(evaluated_run), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["a"] == a and r["calibrated"] is True
    assert r["threshold"] == pytest.approx(bayes_threshold(0.01))
    assert r["decision"] == ("same" if r["score"] >= r["threshold"] else "different")
    assert main(["-q", "verify", a, b, "--model", str(evaluated_run), "--p-target", "0.5"]) == 0
    text = capsys.readouterr().out
    assert f"LLR {r['score']:.4f}, threshold 0.0000" in text and "target prior 0.5" in text


def test_embed_file_cli_writes_npy(evaluated_run: Path, corpus: dict, tmp_path: Path) -> None:
    from spkpeft import SpeakerVerifier

    src = corpus["root"] / "test" / "spk5" / "utt2.wav"
    out = tmp_path / "e.npy"
    assert main(["-q", "embed-file", str(src), "--model", str(evaluated_run), "--out", str(out)]) == 0
    ref = SpeakerVerifier.from_pretrained(evaluated_run, device="cpu").embed(src)
    assert np.allclose(np.load(out), ref, atol=1e-6)
