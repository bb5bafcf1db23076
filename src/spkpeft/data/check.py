"""``spkpeft data check``: read every file of a manifest and report what would hurt training.

Problems: unreadable (missing/corrupt), empty, too short, clipped (a run of full-scale samples) and
non-finite (NaN/inf in float files) audio, plus manifest durations that disagree with the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from spkpeft import progress
from spkpeft.data.manifest import Utterance, load_utterances

PROBLEMS = ("unreadable", "empty", "too_short", "clipped", "non_finite", "duration_mismatch")


@dataclass
class CheckReport:
    total: int = 0
    seconds: float = 0.0
    speakers: int = 0  # distinct speakers named by the manifest (0 when it names none)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PROBLEMS, 0))
    examples: dict[str, list[str]] = field(default_factory=lambda: {p: [] for p in PROBLEMS})

    def add(self, problem: str, what: str, keep: int) -> None:
        self.counts[problem] += 1
        if len(self.examples[problem]) < keep:
            self.examples[problem].append(what)

    @property
    def ok(self) -> bool:
        return not any(self.counts.values())

    def to_dict(self) -> dict:
        return {
            "total": self.total,
            "speakers": self.speakers,
            "seconds": round(self.seconds, 2),
            "counts": self.counts,
            "examples": self.examples,
        }


def _read_raw(u: Utterance) -> tuple[np.ndarray, int]:
    """The utterance's samples as stored (no resampling, no clipping): ((S, C) float32, sample rate)."""
    with sf.SoundFile(u.path) as f:
        f.seek(min(int(round(u.start * f.samplerate)), f.frames))
        return f.read(
            frames=int(round(u.duration * f.samplerate)), dtype="float32", always_2d=True
        ), f.samplerate


def check_utterances(
    utterances: Sequence[Utterance], min_seconds: float = 0.5, clip_run: int = 3, keep: int = 5
) -> CheckReport:
    """Read every utterance; ``clip_run`` consecutive samples at |x| >= 0.999 count as clipping."""
    rep = CheckReport(speakers=len({u.speaker for u in utterances if u.speaker}))
    for u in progress.track(utterances, len(utterances), "check"):
        rep.total += 1
        where = f"{u.id} ({u.path})"
        try:
            x, sr = _read_raw(u)
        except Exception as e:
            rep.add("unreadable", f"{where}: {e}", keep)
            continue
        n = x.shape[0]
        rep.seconds += n / sr
        if n == 0:
            rep.add("empty", where, keep)
            continue
        if n / sr < min_seconds:
            rep.add("too_short", f"{where}: {n / sr:.2f}s", keep)
        if abs(n / sr - u.duration) > 0.05:
            rep.add("duration_mismatch", f"{where}: file {n / sr:.2f}s, manifest {u.duration:.2f}s", keep)
        if not np.isfinite(x).all():
            rep.add("non_finite", where, keep)
        elif _clipped(x, clip_run):
            rep.add("clipped", where, keep)
    return rep


def _clipped(x: np.ndarray, run: int) -> bool:
    hot = (np.abs(x) >= 0.999).any(axis=1).astype(np.int8)
    if hot.sum() < run:
        return False
    window = np.convolve(hot, np.ones(run, dtype=np.int8), mode="valid")
    return bool((window >= run).any())


def check_manifest(path: str | Path, min_seconds: float = 0.5, keep: int = 5) -> CheckReport:
    return check_utterances(load_utterances(path, need_speaker=False), min_seconds, keep=keep)
