"""Fixtures for the data tests: tiny corpora of synthetic tones written to tmp dirs."""

from __future__ import annotations

from pathlib import Path

import pytest
from dummies import tone, tone_corpus, write_tone_tree

from spkpeft.data.audio import write_audio
from spkpeft.data.config import SAMPLE_RATE


@pytest.fixture
def tiny_manifest(tmp_path: Path) -> Path:
    """3 speakers x 4 utterances of 0.6-3 s, 16 kHz wav; returns the manifest path."""
    layout = {f"spk{s}": [0.6, 1.5, 2.5, 3.0] for s in range(3)}
    return tone_corpus(tmp_path / "audio", layout, tmp_path / "train.jsonl.gz")


@pytest.fixture
def write_wav():
    """write_wav(path, seconds=0.3, sr=16000) -> path: a short noisy tone at the given path."""

    def _write(path: Path, seconds: float = 0.3, sr: int = SAMPLE_RATE) -> Path:
        write_audio(path, tone(seconds, 220, sr=sr), sr)
        return path

    return _write


@pytest.fixture
def audio_tree():
    """audio_tree(root, {speaker path: [durations]}, suffix=".wav", sr=16000) -> paths:
    :func:`dummies.write_tone_tree` (speaker k at 200 + 50 k Hz) as a fixture."""

    def _tree(root: Path, layout: dict, suffix: str = ".wav", sr: int = SAMPLE_RATE) -> list[Path]:
        return write_tone_tree(root, layout, suffix=suffix, sr=sr)

    return _tree
