"""Quality-aware score calibration (QMF-style): logistic regression from quality features to an LLR.

Features per trial (names fixed by :data:`FEATURES`; the default set is symmetric in enroll/test):
score, min/max of the two log durations (seconds), min/max of the two raw embedding norms.
The model is scikit-learn's ``LogisticRegression`` fitted with balanced class weights on ~30k trials
sampled among the training (cohort) utterances, so its output w.f + b is the log posterior odds at an
effective prior of 0.5, i.e. a log-likelihood ratio log p(f | target) / p(f | non-target).

Threshold meaning: accept when LLR >= -logit(p) = log((1 - p) / p) to minimise the expected cost at
target prior p with C_miss = C_fa = 1 (:func:`spkpeft.eval.metrics.bayes_threshold`); LLR 0 means the
evidence is neutral. Saved as JSON: feature names, coefficients on the raw features, intercept, version.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from spkpeft.data.trials import Trial
from spkpeft.eval.table import EmbeddingTable, trial_rows

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
DEFAULT_FEATURES = ("score", "log_dur_min", "log_dur_max", "norm_min", "norm_max")


def _pairs(kind: str) -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    return {
        f"{kind}_enroll": lambda e, t: e,
        f"{kind}_test": lambda e, t: t,
        f"{kind}_min": np.minimum,
        f"{kind}_max": np.maximum,
    }


FEATURES = ("score", *_pairs("log_dur"), *_pairs("norm"))


@dataclass
class Calibrator:
    """LLR = features (N, F) @ coef (F,) + intercept, features named by ``feature_names``."""

    feature_names: tuple[str, ...]
    coef: np.ndarray
    intercept: float
    info: dict = field(default_factory=dict)
    version: int = FORMAT_VERSION

    def llr(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != len(self.feature_names):
            raise ValueError(f"features must be (N, {len(self.feature_names)}), got shape {features.shape}")
        return features @ self.coef + self.intercept

    def apply(
        self,
        table: EmbeddingTable,
        trials: Sequence[Trial],
        scores: np.ndarray,
        rows: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Calibrated scores (N,) for trials whose uncalibrated ``scores`` (N,) come from the same scorer
        the calibrator was trained on (``info["scores"]``); ``rows`` as from ``trial_rows``."""
        return self.llr(quality_features(table, trials, scores, self.feature_names, rows))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["coef"] = [float(c) for c in self.coef]
        d["feature_names"] = list(self.feature_names)
        return d

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Calibrator:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
            names, coef = tuple(d["feature_names"]), np.asarray(d["coef"], dtype=np.float64)
            intercept, version = float(d["intercept"]), int(d["version"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: not a calibration file ({type(e).__name__}: {e})") from None
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{path}: calibration format version {version}, this code reads {FORMAT_VERSION}"
            )
        _check_names(names)
        if coef.shape != (len(names),):
            raise ValueError(f"{path}: {len(names)} feature names but {coef.size} coefficients")
        return cls(names, coef, intercept, d.get("info", {}), version)


def _check_names(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ValueError(f"unknown calibration features {unknown}; valid: {', '.join(FEATURES)}")


def quality_features(
    table: EmbeddingTable,
    trials: Sequence[Trial],
    scores: np.ndarray,
    names: Sequence[str] = DEFAULT_FEATURES,
    rows: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Feature matrix (N, F) for the trials: columns named by ``names`` (see :data:`FEATURES`).

    Durations come from ``table.durations`` (seconds, floored at 0.01 s before the log); norms are the
    L2 norms of the raw (uncentred) embeddings. ``rows``: ``trial_rows(table, trials)`` if known.
    """
    _check_names(names)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(trials),):
        raise ValueError(f"scores must have shape ({len(trials)},), got {scores.shape}")
    e_rows, t_rows = rows if rows is not None else trial_rows(table, trials)
    cols = []
    for name in names:
        if name == "score":
            cols.append(scores)
            continue
        kind, side = name.rsplit("_", 1)
        if kind == "log_dur":
            if table.durations is None:
                raise ValueError(f"calibration feature {name!r} needs durations, but the table has none")
            per_utt = np.log(np.maximum(table.durations, 0.01))
        else:
            per_utt = np.linalg.norm(table.vectors, axis=1).astype(np.float64)
        cols.append(_pairs(kind)[name](per_utt[e_rows], per_utt[t_rows]))
    return np.stack(cols, axis=1)


def fit_calibrator(
    features: np.ndarray,
    labels: np.ndarray,
    feature_names: Sequence[str] = DEFAULT_FEATURES,
    c: float = 100.0,
    info: Mapping | None = None,
) -> Calibrator:
    """Fit the logistic regression on features (N, F) and labels (N,) with balanced class weights.

    Features are standardised for the fit and the scaling folded back, so the stored coefficients apply
    to raw features. ``c`` is scikit-learn's inverse L2 strength (on standardised features).
    """
    from sklearn.linear_model import LogisticRegression

    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    if features.ndim != 2 or features.shape[1] != len(feature_names) or features.shape[0] != labels.size:
        raise ValueError(
            f"features {features.shape} must be (N={labels.size}, F={len(feature_names)}) for {feature_names}"
        )
    if not np.isfinite(features).all():
        raise ValueError("calibration features contain NaN/inf")
    n_tar = int(labels.sum())
    if n_tar == 0 or n_tar == labels.size:
        raise ValueError(f"calibration needs targets and non-targets, got {n_tar} of {labels.size} targets")
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale == 0] = 1.0  # a constant feature gets weight ~0 through the regulariser
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=1000)
    model.fit((features - mean) / scale, labels)
    w = model.coef_[0] / scale
    b = float(model.intercept_[0] - w @ mean)
    meta = {"n_target": n_tar, "n_nontarget": int(labels.size - n_tar), "c": c, **dict(info or {})}
    log.info("calibration fitted on %d trials: %s", labels.size, dict(zip(feature_names, np.round(w, 4))))
    return Calibrator(tuple(feature_names), w, b, meta)


def sample_cohort_trials(
    ids: Sequence[str], utt2spk: Mapping[str, str], n_trials: int = 30_000, seed: int = 0
) -> list[Trial]:
    """Half target, half non-target trials among ``ids`` (seeded). Target pairs join two different
    utterances of one speaker (speakers with a single utterance give none); non-targets two speakers."""
    rng = np.random.default_rng(seed)
    spk = np.array([utt2spk[u] for u in ids])
    order = np.argsort(spk, kind="stable")
    _, start, count = np.unique(spk[order], return_index=True, return_counts=True)
    if len(start) < 2:
        raise ValueError(f"calibration trials need at least 2 speakers, got {len(start)}")
    group = np.repeat(np.arange(len(start)), count)  # group of each sorted position
    multi = np.flatnonzero(count[group] >= 2)  # sorted positions whose speaker has >= 2 utterances
    if multi.size == 0:
        raise ValueError("calibration trials need a speaker with at least 2 utterances; none has")
    n_tar = n_trials // 2
    a = rng.choice(multi, n_tar)
    g = group[a]
    b = start[g] + (a - start[g] + rng.integers(1, count[g])) % count[g]  # another utterance, same speaker
    n_non = n_trials - n_tar
    x, y = rng.integers(0, len(ids), n_non), rng.integers(0, len(ids), n_non)
    same = spk[x] == spk[y]
    while same.any():  # re-draw the same-speaker pairs only
        y[same] = rng.integers(0, len(ids), int(same.sum()))
        same = spk[x] == spk[y]
    pos = order  # sorted position -> index into ids
    trials = [Trial(ids[pos[i]], ids[pos[j]], 1) for i, j in zip(a, b)]
    trials += [Trial(ids[i], ids[j], 0) for i, j in zip(x, y)]
    return trials


def train_calibration(
    table: EmbeddingTable,
    utt2spk: Mapping[str, str],
    score_fn: Callable[[EmbeddingTable, list[Trial]], np.ndarray],
    n_trials: int = 30_000,
    seed: int = 0,
    feature_names: Sequence[str] = DEFAULT_FEATURES,
    info: Mapping | None = None,
) -> Calibrator:
    """Sample cohort trials among ``table``'s utterances, score them with ``score_fn`` (the same scorer
    used at test time: raw cosine or AS-norm) and fit the calibrator."""
    trials = sample_cohort_trials(table.ids, utt2spk, n_trials, seed)
    scores = score_fn(table, trials)
    feats = quality_features(table, trials, scores, feature_names)
    labels = np.array([t.label for t in trials])
    return fit_calibrator(feats, labels, feature_names, info={"seed": seed, **dict(info or {})})
