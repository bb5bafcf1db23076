"""End to end on real recordings: data loader -> extract_embeddings (chunked, cached) -> evaluate -> report.

The embedding is a fixed function of the audio (mean log power spectrum, randomly projected), a crude
but real speaker cue, so the test checks the plumbing on real voices and that the numbers are sane.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import soundfile as sf
import torch

from spkpeft.data.eval_dataset import build_eval_loader
from spkpeft.data.manifest import Utterance
from spkpeft.data.trials import Trial
from spkpeft.eval.config import EvalConfig
from spkpeft.eval.embed import extract_embeddings
from spkpeft.eval.pipeline import evaluate
from spkpeft.eval.report import write_report
from spkpeft.eval.scorer import Scorer, TrainingSet

_PROJ = torch.randn(201, 48, generator=torch.Generator().manual_seed(0)) / 201**0.5


def spectral_embed(wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, S), (B,) -> (B, 48): mean log power spectrum over the real frames, projected."""
    spec = torch.stft(wav, 400, 160, window=torch.hann_window(400), return_complex=True).abs() ** 2
    frames = torch.arange(spec.shape[-1])[None, :] < (lengths[:, None] // 160 + 1)
    logspec = torch.log(spec + 1e-8) * frames[:, None, :]
    mean = logspec.sum(-1) / frames.sum(-1, keepdim=True)
    return (mean - mean.mean(dim=1, keepdim=True)) @ _PROJ


def _utterances(root, pattern):
    out = []
    for path in sorted(root.glob(pattern)):
        info = sf.info(str(path))
        spk = path.relative_to(root).parts[1]
        out.append(Utterance(path.relative_to(root).as_posix(), str(path), 0.0, info.duration, spk))
    return out


def test_real_speech_end_to_end(real_speech, tmp_path):
    train_utts = _utterances(real_speech, "librispeech-test-other/*/*.flac")[::2]  # 10 speakers x 5
    test_utts = _utterances(real_speech, "vctk/*/*.wav")
    assert len(train_utts) >= 40 and len(test_utts) >= 20
    kw = {"chunk_seconds": 3.0, "overlap_seconds": 0.5}  # short chunks: many real files get split
    calls = []

    def counted(wav, lengths):
        calls.append(wav.shape)
        return spectral_embed(wav, lengths)

    test = extract_embeddings(counted, build_eval_loader(test_utts, batch_size=8), tmp_path / "c", **kw)
    assert max(s[1] for s in calls) <= 3 * 16000
    n_calls = len(calls)
    again = extract_embeddings(counted, build_eval_loader(test_utts, batch_size=8), tmp_path / "c", **kw)
    assert len(calls) == n_calls  # all cached
    np.testing.assert_array_equal(again.vectors, test.vectors)
    np.testing.assert_allclose(
        sorted(test.durations), sorted(u.duration for u in test_utts), rtol=1e-3, atol=1e-3
    )
    train = extract_embeddings(spectral_embed, build_eval_loader(train_utts, batch_size=8), **kw)

    spk = {u.id: u.speaker for u in test_utts}
    trials = [Trial(a, b, int(spk[a] == spk[b])) for a, b in itertools.combinations(sorted(spk), 2)]
    utt2spk = {u.id: u.speaker for u in train_utts}
    cfg = EvalConfig(top_k=5, calibration_trials=2000)
    res = evaluate(test, {"vctk": trials}, Scorer.fit(TrainingSet(train, utt2spk), cfg), cfg)
    systems = res["trial_lists"]["vctk"]["systems"]
    assert set(systems) == {"cosine", "asnorm", "calibrated"}
    assert systems["cosine"]["eer"] < 0.35, systems["cosine"]["eer"]  # clearly better than chance (0.5)
    write_report(tmp_path / "run", res, plots=False)  # plots are covered in test_pipeline_report
    assert "## vctk" in (tmp_path / "run" / "report.md").read_text()


@pytest.mark.parametrize("seconds", [1.0, 5.0])
def test_spectral_embed_ignores_padding(seconds):
    wav = torch.randn(1, int(seconds * 16000))
    padded = torch.cat([wav, torch.zeros(1, 16000)], dim=1)
    n = torch.tensor([wav.shape[1]])
    torch.testing.assert_close(spectral_embed(wav, n), spectral_embed(padded, n), atol=0.05, rtol=0.05)
