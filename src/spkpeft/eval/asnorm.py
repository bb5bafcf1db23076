"""Adaptive symmetric score normalisation (AS-norm, Matejka et al. 2017; as in WeSpeaker and LAP).

Cohort: one vector per training speaker, the mean of that speaker's centred, L2-normalised utterance
embeddings (centring = subtracting the training-set mean embedding, when enabled). For every utterance u
that a trial uses, its cosine scores against all C cohort vectors are computed and the top K kept;
mu_u and sigma_u are their mean and (population) standard deviation. A trial (e, t) with raw score s gets

    s_norm = 0.5 * ((s - mu_e) / sigma_e + (s - mu_t) / sigma_t)

Statistics are computed once per distinct utterance (not per trial), in chunks of utterances so that the
(chunk, C) score block stays small; the top K come from ``np.partition`` (linear time per row).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from spkpeft.data.trials import Trial
from spkpeft.eval.scoring import normalise, rowwise_cosine
from spkpeft.eval.table import EmbeddingTable, trial_rows

log = logging.getLogger(__name__)

DEFAULT_TOP_K = 300
_BLOCK_ELEMENTS = 1 << 20  # cohort-score block size (rows x C) per chunk, 4 MB in float32


@dataclass
class Cohort:
    """``speakers`` (C,) with unit-norm ``vectors`` (C, E); ``mean`` (E,) is the centring vector used
    (None when centring is off) and must be applied to every embedding scored against this cohort."""

    speakers: list[str]
    vectors: np.ndarray
    mean: np.ndarray | None

    def __len__(self) -> int:
        return len(self.speakers)


def build_cohort(table: EmbeddingTable, utt2spk: Mapping[str, str], subtract_mean: bool = True) -> Cohort:
    """Per-speaker mean embeddings of a (training) table. ``utt2spk`` must name every id of the table."""
    missing = [u for u in table.ids if u not in utt2spk]
    if missing:
        raise KeyError(f"{len(missing)} cohort utterances have no speaker in utt2spk, e.g. {missing[:5]}")
    mean = table.mean() if subtract_mean else None
    x = normalise(table.vectors, mean)
    speakers, inverse = np.unique(np.array([utt2spk[u] for u in table.ids]), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(len(speakers)))
    sums = np.add.reduceat(x[order], starts, axis=0)
    log.info(
        "cohort: %d speakers from %d utterances (mean subtraction %s)",
        len(speakers),
        len(table),
        mean is not None,
    )
    return Cohort([str(s) for s in speakers], normalise(sums), mean)


def cohort_stats(
    x: np.ndarray, cohort: np.ndarray, top_k: int, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (M,) of the ``top_k`` highest scores of each row of x (M, E) against cohort (C, E).

    Both inputs must be row-normalised. ``exclude`` (M,) int gives, per row, a cohort index to leave out
    (its own speaker; -1 for none).
    """
    n_cohort = cohort.shape[0]
    if top_k < 2 or top_k > n_cohort:
        raise ValueError(f"top_k must lie in [2, cohort size {n_cohort}], got {top_k}")
    chunk = max(1, _BLOCK_ELEMENTS // n_cohort)
    mu = np.empty(x.shape[0])
    sd = np.empty(x.shape[0])
    for lo in range(0, x.shape[0], chunk):
        block = x[lo : lo + chunk] @ cohort.T  # (m, C) float32
        if exclude is not None:
            ex = exclude[lo : lo + chunk]
            rows = np.flatnonzero(ex >= 0)
            block[rows, ex[rows]] = -np.inf
        top = np.partition(block, n_cohort - top_k, axis=1)[:, n_cohort - top_k :].astype(np.float64)
        mu[lo : lo + chunk] = top.mean(axis=1)
        sd[lo : lo + chunk] = top.std(axis=1)
    return mu, np.maximum(sd, 1e-8)


def asnorm_scores(
    table: EmbeddingTable,
    trials: Sequence[Trial],
    cohort: Cohort,
    top_k: int = DEFAULT_TOP_K,
    raw: np.ndarray | None = None,
    exclude_own_speaker: Mapping[str, str] | None = None,
    rows: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """AS-norm scores (N,) float64 of the trials.

    ``raw``: the trials' cosine scores computed with ``cohort.mean`` subtracted (as
    ``cosine_scores(table, trials, cohort.mean)``), reused instead of recomputed when given.
    ``exclude_own_speaker``: utt -> speaker; an utterance's own speaker is left out of its cohort (for
    trials drawn from the cohort's own training set, e.g. calibration trials).
    ``rows``: the trials' ``trial_rows(table, trials)`` when the caller already has them.
    """
    e_rows, t_rows = rows if rows is not None else trial_rows(table, trials)
    used = np.unique(np.concatenate([e_rows, t_rows]))
    x = normalise(table.vectors[used], cohort.mean)
    e_loc, t_loc = np.searchsorted(used, e_rows), np.searchsorted(used, t_rows)
    if raw is None:
        raw = rowwise_cosine(x, e_loc, t_loc)
    elif raw.shape != (len(trials),):
        raise ValueError(f"raw scores must have shape ({len(trials)},), got {raw.shape}")
    exclude = None
    if exclude_own_speaker is not None:
        spk_index = {s: i for i, s in enumerate(cohort.speakers)}
        exclude = np.array([spk_index.get(exclude_own_speaker.get(table.ids[r], ""), -1) for r in used])
    usable = len(cohort) - (1 if exclude is not None else 0)
    k = top_k
    if k > usable:
        log.warning("AS-norm top_k=%d exceeds the usable cohort size %d; using %d", k, usable, usable)
        k = usable
    mu, sd = cohort_stats(x, cohort.vectors, k, exclude)
    return 0.5 * ((raw - mu[e_loc]) / sd[e_loc] + (raw - mu[t_loc]) / sd[t_loc])
