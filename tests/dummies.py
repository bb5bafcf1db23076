"""Test data without downloads: noisy tones as speakers, written as audio trees and manifests.

In the manner of lhotse's ``lhotse/testing/dummies.py``: plain functions the conftests and tests call to
make what they need (no fixtures here, so each conftest keeps its own scope and sizes). A speaker is a
tone: speaker k of a layout speaks at ``base_hz + step_hz * k`` Hz, which a speaker model separates
after a few steps; every utterance adds its own seeded noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spkpeft.data.audio import write_audio
from spkpeft.data.config import SAMPLE_RATE
from spkpeft.data.manifest import CutSet, make_cut, save_manifest


def tone(
    seconds: float,
    freq: float,
    seed: int = 0,
    noise: float = 0.01,
    overtone: float = 0.0,
    sr: int = SAMPLE_RATE,
) -> np.ndarray:
    """(int(seconds * sr),) float32: ``0.3 sin(2 pi freq t)``, plus ``overtone sin(2 pi 2.5 freq t)`` when
    given, plus Gaussian noise of standard deviation ``noise`` drawn with ``seed``."""
    t = np.arange(int(seconds * sr)) / sr
    wave = 0.3 * np.sin(2 * np.pi * freq * t)
    if overtone:
        wave = wave + overtone * np.sin(2 * np.pi * 2.5 * freq * t)
    return (wave + np.random.default_rng(seed).normal(0, noise, len(t))).astype(np.float32)


@dataclass(frozen=True)
class Tones:
    """How the speakers of a layout sound: speaker k at ``base_hz + step_hz * k`` Hz with the given noise
    and overtone; utterance n of speaker k draws its noise with seed ``seed_stride * k + n``."""

    base_hz: float = 200.0
    step_hz: float = 50.0
    noise: float = 0.01
    overtone: float = 0.0
    seed_stride: int = 0

    def utterance(self, k: int, n: int, seconds: float, sr: int = SAMPLE_RATE) -> np.ndarray:
        freq = self.base_hz + self.step_hz * k
        return tone(seconds, freq, self.seed_stride * k + n, self.noise, self.overtone, sr)


def write_tone_tree(
    root: Path,
    layout: Mapping[str, Sequence[float]],
    tones: Tones = Tones(),
    suffix: str = ".wav",
    sr: int = SAMPLE_RATE,
    first_index: int = 0,
) -> list[Path]:
    """``root/SPEAKER/uttN<suffix>`` for each ``SPEAKER -> [duration of utterance N, ...]`` of ``layout``;
    the speakers are numbered k = first_index, first_index + 1, ... in layout order. Returns the paths."""
    paths = []
    for k, (speaker, durations) in enumerate(layout.items(), start=first_index):
        for n, seconds in enumerate(durations):
            path = root / speaker / f"utt{n}{suffix}"
            write_audio(path, tones.utterance(k, n, seconds, sr), sr)
            paths.append(path)
    return paths


def tone_corpus(
    root: Path,
    layout: Mapping[str, Sequence[float]],
    manifest: Path,
    tones: Tones = Tones(),
    first_index: int = 0,
) -> Path:
    """:func:`write_tone_tree` under ``root`` plus its manifest at ``manifest``: one cut per file, id
    ``SPEAKER/uttN``, speaker ``SPEAKER``. Returns the manifest path."""
    paths = write_tone_tree(root, layout, tones, first_index=first_index)
    rel = [p.relative_to(root) for p in paths]
    cuts = [
        make_cut(p, r.with_suffix("").as_posix(), speaker=r.parent.as_posix()) for p, r in zip(paths, rel)
    ]
    return save_manifest(CutSet.from_cuts(cuts), manifest)
