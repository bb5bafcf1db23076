"""Speaker labels -> contiguous class indices, saved with a run as ``speakers.json``.

With speed perturbation, the copy of speaker s played at factor k (k-th entry of ``speed_factors``,
k = 0 is the original 1.0) is class ``s + k * num_speakers``: 3x classes for (1.0, 0.9, 1.1).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SpeakerMap:
    speakers: tuple[str, ...]
    speed_factors: tuple[float, ...] = (1.0,)

    @classmethod
    def from_speakers(cls, speakers: Iterable[str], speed_factors: Sequence[float] = (1.0,)) -> SpeakerMap:
        """Sorted unique speakers (deterministic across runs and machines)."""
        uniq = tuple(sorted(set(speakers)))
        if not uniq:
            raise ValueError("no speakers: the manifest has no supervision with a speaker label")
        return cls(uniq, tuple(float(f) for f in speed_factors))

    @property
    def num_speakers(self) -> int:
        return len(self.speakers)

    @property
    def num_classes(self) -> int:
        return len(self.speakers) * len(self.speed_factors)

    def index(self, speaker: str) -> int:
        idx = self._lookup().get(speaker)
        if idx is None:
            raise KeyError(f"speaker {speaker!r} is not in the speaker map ({self.num_speakers} speakers)")
        return idx

    def label(self, speaker: str, factor_index: int = 0) -> int:
        """Class index of ``speaker`` played at ``speed_factors[factor_index]``."""
        return self.index(speaker) + factor_index * self.num_speakers

    def speaker_of(self, label: int) -> tuple[str, float]:
        """Inverse of :meth:`label`: (speaker, speed factor)."""
        k, s = divmod(int(label), self.num_speakers)
        return self.speakers[s], self.speed_factors[k]

    def _lookup(self) -> dict[str, int]:
        cache = self.__dict__.get("_cache")
        if cache is None:
            cache = {s: i for i, s in enumerate(self.speakers)}
            object.__setattr__(self, "_cache", cache)
        return cache

    def save(self, path: str | Path) -> None:
        data = {
            "speakers": list(self.speakers),
            "speed_factors": list(self.speed_factors),
            "num_classes": self.num_classes,
        }
        Path(path).write_text(json.dumps(data, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> SpeakerMap:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"speaker map not found: {path}")
        try:
            data = json.loads(path.read_text())
            return cls(tuple(data["speakers"]), tuple(float(f) for f in data.get("speed_factors", [1.0])))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: not a speakers.json ({{'speakers': [...]}}): {e}") from None
