"""EmbeddingTable: utterance ids -> embedding vectors (and durations), the currency of the eval stage."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from spkpeft.data.trials import Trial, check_trials

_SHOW_MISSING = 5


@dataclass
class EmbeddingTable:
    """``ids`` (N,) with ``vectors`` (N, E) float32 and optional ``durations`` (N,) seconds."""

    ids: list[str]
    vectors: np.ndarray
    durations: np.ndarray | None = None
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.ids = list(self.ids)
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.ids):
            raise ValueError(f"vectors must be (N={len(self.ids)}, E), got shape {self.vectors.shape}")
        if self.durations is not None:
            self.durations = np.asarray(self.durations, dtype=np.float64)
            if self.durations.shape != (len(self.ids),):
                raise ValueError(f"durations must be ({len(self.ids)},), got {self.durations.shape}")
        self._index = {u: i for i, u in enumerate(self.ids)}
        if len(self._index) != len(self.ids):
            dup = [u for u, n in Counter(self.ids).items() if n > 1][:_SHOW_MISSING]
            raise ValueError(f"duplicate ids in embedding table, e.g. {dup}")
        bad = ~np.isfinite(self.vectors).all(axis=1)
        if bad.any():
            raise ValueError(
                f"non-finite embeddings for ids {[self.ids[i] for i in np.flatnonzero(bad)[:5]]}"
            )

    @classmethod
    def from_dict(cls, vectors: Mapping[str, Sequence[float]], durations: Mapping[str, float] | None = None):
        ids = list(vectors)
        mat = np.stack([np.asarray(vectors[u], dtype=np.float32) for u in ids]) if ids else np.zeros((0, 0))
        dur = None if durations is None else np.array([durations[u] for u in ids], dtype=np.float64)
        return cls(ids, mat, dur)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, utt: str) -> bool:
        return utt in self._index

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def rows(self, ids: Sequence[str], what: str = "ids") -> np.ndarray:
        """Row indices (len(ids),) int64; unknown ids raise KeyError listing the first few."""
        index = self._index
        missing = [u for u in dict.fromkeys(ids) if u not in index]
        if missing:
            raise KeyError(
                f"{len(missing)} {what} have no embedding (table holds {len(self)} ids), "
                f"first missing: {missing[:_SHOW_MISSING]}"
            )
        return np.array(list(map(index.__getitem__, ids)), dtype=np.int64).reshape(len(ids))

    def subset(self, ids: Sequence[str]) -> EmbeddingTable:
        r = self.rows(ids)
        return EmbeddingTable(
            list(ids), self.vectors[r], None if self.durations is None else self.durations[r]
        )

    def mean(self) -> np.ndarray:
        """Mean embedding (E,) float32, e.g. of the training set for mean subtraction."""
        if len(self) == 0:
            raise ValueError("cannot take the mean of an empty embedding table")
        return self.vectors.mean(axis=0, dtype=np.float64).astype(np.float32)


def trial_rows(table: EmbeddingTable, trials: Sequence[Trial]) -> tuple[np.ndarray, np.ndarray]:
    """(enroll rows (N,), test rows (N,)) for the trials; ids without an embedding raise ValueError
    (``spkpeft.data.trials.check_trials``) listing the first few."""
    if len(trials) == 0:
        raise ValueError("empty trial list")
    check_trials(trials, table.ids, where="trials vs embedding table")
    return table.rows([t.enroll for t in trials]), table.rows([t.test for t in trials])


def trial_labels(trials: Sequence[Trial]) -> np.ndarray:
    """Labels (N,) int8; raises ValueError when some trial has no label (a scoring-only list)."""
    unlabeled = [i for i, t in enumerate(trials) if t.label is None]
    if unlabeled:
        raise ValueError(
            f"{len(unlabeled)} trials have no label (e.g. trial #{unlabeled[0]}); metrics need them"
        )
    return np.fromiter((t.label for t in trials), dtype=np.int8, count=len(trials))
