"""A tiny speaker corpus (tones per speaker) and the tiny experiment config pointing at it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spkpeft.data.audio import write_audio
from spkpeft.data.manifest import CutSet, make_cut, save_manifest

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "spkpeft" / "configs"
TINY = CONFIGS / "tiny.yaml"


def _tone(seconds: float, freq: float, seed: int) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    noise = np.random.default_rng(seed).normal(0, 0.05, len(t))
    return (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 speakers x 3 utterances of 0.6-1 s (one tone per speaker); returns the manifest path."""
    root = tmp_path_factory.mktemp("corpus")
    cuts = []
    for s in range(4):
        for n, dur in enumerate((0.6, 0.8, 1.0)):
            path = root / f"spk{s}" / f"utt{n}.wav"
            write_audio(path, _tone(dur, 150 + 120 * s, seed=10 * s + n), 16000)
            cuts.append(make_cut(path, f"spk{s}/utt{n}", speaker=f"spk{s}"))
    return save_manifest(CutSet.from_cuts(cuts), root / "train.jsonl.gz")


@pytest.fixture
def tiny_overrides(tiny_corpus: Path, tmp_path: Path) -> list[str]:
    return [f"data.train_manifest={tiny_corpus}", f"train.output_dir={tmp_path / 'run'}"]


@pytest.fixture
def tiny_yaml() -> Path:
    return TINY
