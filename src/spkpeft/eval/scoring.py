"""Cosine scoring of trials, optionally after subtracting a mean embedding (usually the training set's).

score(e, t) = cos(x_e - mu, x_t - mu). The table is centred and L2-normalised once, then trials are
scored by gathering rows and a row-wise dot product, in chunks so memory stays bounded on long lists.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spkpeft.data.trials import Trial
from spkpeft.eval.table import EmbeddingTable, trial_rows

CHUNK_TRIALS = 4096  # small chunks keep the gathered rows in cache (much faster than huge ones)


def normalise(x: np.ndarray, mean: np.ndarray | None = None, eps: float = 1e-12) -> np.ndarray:
    """(N, E) -> (N, E) float32: subtract ``mean`` (E,) if given, then divide each row by its L2 norm."""
    x = np.asarray(x, dtype=np.float32)
    if mean is not None:
        mean = np.asarray(mean, dtype=np.float32)
        if mean.shape != (x.shape[1],):
            raise ValueError(f"mean embedding must have shape ({x.shape[1]},), got {mean.shape}")
        x = x - mean
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, eps)


def rowwise_cosine(x: np.ndarray, e_rows: np.ndarray, t_rows: np.ndarray) -> np.ndarray:
    """Scores (N,) float64 = <x[e_rows], x[t_rows]> for a row-normalised matrix x (M, E), chunked."""
    out = np.empty(e_rows.shape[0], dtype=np.float64)
    for lo in range(0, e_rows.shape[0], CHUNK_TRIALS):
        hi = lo + CHUNK_TRIALS
        out[lo:hi] = np.einsum("ij,ij->i", x[e_rows[lo:hi]], x[t_rows[lo:hi]])  # float32 products
    return out


def cosine_scores(
    table: EmbeddingTable,
    trials: Sequence[Trial],
    mean: np.ndarray | None = None,
    rows: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Cosine score (N,) float64 of each trial; ``mean`` (E,) is subtracted first when given.

    Raises ValueError listing the first few trial ids that have no embedding. ``rows``: the trials'
    ``trial_rows(table, trials)`` when the caller already has them.
    """
    e_rows, t_rows = rows if rows is not None else trial_rows(table, trials)
    used = np.unique(np.concatenate([e_rows, t_rows]))
    # normalise only the rows the trials use; remap trial rows into the compact matrix
    x = normalise(table.vectors[used], mean)
    return rowwise_cosine(x, np.searchsorted(used, e_rows), np.searchsorted(used, t_rows))
