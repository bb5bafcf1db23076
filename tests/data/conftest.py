"""Fixtures for the data tests: tiny corpora of synthetic tones written to tmp dirs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spkpeft.data.audio import write_audio
from spkpeft.data.manifest import CutSet, make_cut, save_manifest


def tone(seconds: float, freq: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    noise = np.random.default_rng(seed).normal(0, 0.01, len(t))
    return (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def write_tree(
    root: Path, layout: dict[str, list[float]], suffix: str = ".wav", sr: int = 16000
) -> list[Path]:
    """root/SPEAKER/uttN.suffix for each speaker -> list of durations."""
    paths = []
    for s, (spk, durs) in enumerate(layout.items()):
        for n, d in enumerate(durs):
            p = root / spk / f"utt{n}{suffix}"
            write_audio(p, tone(d, 200 + 50 * s, sr, seed=n), sr)
            paths.append(p)
    return paths


@pytest.fixture
def tiny_manifest(tmp_path: Path) -> Path:
    """3 speakers x 4 utterances of 0.6-3 s, 16 kHz wav; returns the manifest path."""
    layout = {f"spk{s}": [0.6, 1.5, 2.5, 3.0] for s in range(3)}
    paths = write_tree(tmp_path / "audio", layout)
    cuts = [make_cut(p, f"{p.parent.name}/{p.stem}", speaker=p.parent.name) for p in paths]
    return save_manifest(CutSet.from_cuts(cuts), tmp_path / "train.jsonl.gz")


@pytest.fixture
def write_wav():
    """write_wav(path, seconds=0.3, sr=16000) -> path: a short noisy tone at the given path."""

    def _write(path: Path, seconds: float = 0.3, sr: int = 16000) -> Path:
        write_audio(path, tone(seconds, 220, sr), sr)
        return path

    return _write


@pytest.fixture
def audio_tree():
    """audio_tree(root, {speaker path: [durations]}) -> paths: :func:`write_tree` as a fixture."""
    return write_tree
