"""Speaker-verification metrics: DET curve, EER and normalised minimum DCF, with their thresholds.

A trial is accepted when ``score >= threshold``. For each distinct score ``t`` (plus ``+inf``, which
rejects everything) the operating point is

    P_miss(t) = #targets with score < t / #targets
    P_fa(t)   = #non-targets with score >= t / #non-targets

All points come from one sort and two cumulative sums: O(n log n), no loop over trials.

* EER: where P_miss and P_fa cross, linearly interpolated between the two neighbouring operating points
  that straddle the crossing (as WeSpeaker's ``compute_eer``). Its threshold is the score of the
  operating point nearest the crossing (smallest |P_miss - P_fa|).
* DCF(t) = C_miss * P_miss(t) * p_target + C_fa * P_fa(t) * (1 - p_target), normalised by the cost of
  the best trivial system, min(C_miss * p_target, C_fa * (1 - p_target)) (NIST SRE / WeSpeaker / Kaldi
  ``compute_min_dcf``). minDCF is its minimum over all thresholds, so it is at most 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_P_TARGETS = (0.01, 0.05)


@dataclass(frozen=True)
class DetCurve:
    """Operating points sorted by increasing threshold: P_miss rises from 0 to 1, P_fa falls from 1 to 0.

    Arrays have shape (K,) with K = number of distinct scores + 1 (the last threshold is ``+inf``).
    """

    thresholds: np.ndarray
    p_miss: np.ndarray
    p_fa: np.ndarray


@dataclass(frozen=True)
class MinDcf:
    p_target: float
    value: float
    threshold: float


@dataclass(frozen=True)
class VerificationMetrics:
    """EER (a fraction, not a percentage) and minDCF per p_target, with thresholds and trial counts."""

    eer: float
    eer_threshold: float
    min_dcf: tuple[MinDcf, ...]
    n_target: int
    n_nontarget: int
    c_miss: float = 1.0
    c_fa: float = 1.0

    def dcf(self, p_target: float) -> MinDcf:
        for d in self.min_dcf:
            if np.isclose(d.p_target, p_target):
                return d
        raise KeyError(f"minDCF was not computed for p_target={p_target}; have {self.p_targets}")

    @property
    def p_targets(self) -> list[float]:
        return [d.p_target for d in self.min_dcf]

    def to_dict(self) -> dict:
        """JSON-ready: ``{"eer", "eer_threshold", "min_dcf": {"0.01": {"value", "threshold"}}, ...}``;
        a threshold of +inf (reject every trial) becomes None."""
        return {
            "eer": self.eer,
            "eer_threshold": _json_threshold(self.eer_threshold),
            "min_dcf": {
                f"{d.p_target:g}": {"value": d.value, "threshold": _json_threshold(d.threshold)}
                for d in self.min_dcf
            },
            "n_target": self.n_target,
            "n_nontarget": self.n_nontarget,
            "c_miss": self.c_miss,
            "c_fa": self.c_fa,
        }


def _json_threshold(t: float) -> float | None:
    """JSON has no infinity: the reject-everything threshold (+inf) is written as null."""
    return t if np.isfinite(t) else None


def check_scores(scores: np.ndarray | Sequence[float], labels: np.ndarray | Sequence[int]) -> tuple:
    """Validate and convert: scores (N,) finite floats, labels (N,) in {0, 1} with both classes present.

    Returns ``(scores float64 (N,), labels bool (N,))``; raises ValueError saying what is wrong.
    """
    s = np.asarray(scores, dtype=np.float64)
    lab = np.asarray(labels)
    if s.ndim != 1 or lab.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D, got shapes {s.shape} and {lab.shape}")
    if s.shape[0] != lab.shape[0]:
        raise ValueError(f"length mismatch: {s.shape[0]} scores but {lab.shape[0]} labels")
    bad = ~np.isfinite(s)
    if bad.any():
        idx = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(f"{int(bad.sum())} non-finite scores (NaN/inf), e.g. at trial indices {idx}")
    if not np.isin(lab, (0, 1)).all():
        raise ValueError(f"labels must be 0 (non-target) or 1 (target), got values {np.unique(lab)[:10]}")
    lab = lab.astype(bool)
    n_tar = int(lab.sum())
    if n_tar == 0:
        raise ValueError(f"no target trials among {lab.size}: EER/minDCF need both targets and non-targets")
    if n_tar == lab.size:
        raise ValueError(f"no non-target trials among {lab.size}: EER/minDCF need both classes")
    return s, lab


def det_curve(scores: np.ndarray | Sequence[float], labels: np.ndarray | Sequence[int]) -> DetCurve:
    """All operating points (P_miss, P_fa) of the detector, one per distinct score plus ``+inf``."""
    s, lab = check_scores(scores, labels)
    return _det_curve(s, lab)


def _det_curve(s: np.ndarray, lab: np.ndarray) -> DetCurve:
    order = np.argsort(s, kind="stable")
    s, lab = s[order], lab[order]
    # tar_below[i] = number of targets among the i lowest scores (i = 0..N)
    tar_below = np.concatenate(([0], np.cumsum(lab)))
    non_below = np.concatenate(([0], np.cumsum(~lab)))
    uniq, first = np.unique(s, return_index=True)  # first index of each distinct score in sorted order
    idx = np.concatenate((first, [s.size]))
    n_tar, n_non = tar_below[-1], non_below[-1]
    return DetCurve(
        thresholds=np.concatenate((uniq, [np.inf])),
        p_miss=tar_below[idx] / n_tar,
        p_fa=(n_non - non_below[idx]) / n_non,
    )


def eer_from_det(det: DetCurve) -> tuple[float, float]:
    """(EER, threshold) from a DET curve; see the module docstring for the interpolation."""
    diff = det.p_miss - det.p_fa  # rises from -1 to +1
    i1 = int(np.argmax(diff >= 0))  # first point with P_miss >= P_fa; i1 >= 1 since diff[0] = -1
    i0 = i1 - 1
    d_miss = det.p_miss[i1] - det.p_miss[i0]
    d_fa = det.p_fa[i1] - det.p_fa[i0]
    denom = d_miss - d_fa
    a = (det.p_fa[i0] - det.p_miss[i0]) / denom if denom > 0 else 0.0
    eer = float(det.p_miss[i0] + a * d_miss)
    best = i0 if abs(diff[i0]) < abs(diff[i1]) else i1
    return eer, float(det.thresholds[best])


def min_dcf_from_det(det: DetCurve, p_target: float, c_miss: float = 1.0, c_fa: float = 1.0) -> MinDcf:
    """Normalised minimum detection cost at ``p_target`` and the threshold that reaches it."""
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must lie strictly between 0 and 1, got {p_target}")
    if c_miss <= 0 or c_fa <= 0:
        raise ValueError(f"costs must be positive, got c_miss={c_miss}, c_fa={c_fa}")
    dcf = c_miss * det.p_miss * p_target + c_fa * det.p_fa * (1.0 - p_target)
    c_default = min(c_miss * p_target, c_fa * (1.0 - p_target))
    i = int(np.argmin(dcf))
    return MinDcf(float(p_target), float(dcf[i] / c_default), float(det.thresholds[i]))


def compute_metrics(
    scores: np.ndarray | Sequence[float],
    labels: np.ndarray | Sequence[int],
    p_targets: Sequence[float] = DEFAULT_P_TARGETS,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> VerificationMetrics:
    """EER and minDCF at each ``p_target`` for scores (N,) and labels (N,) (1 target, 0 non-target)."""
    s, lab = check_scores(scores, labels)
    det = _det_curve(s, lab)
    eer, eer_thr = eer_from_det(det)
    dcfs = tuple(min_dcf_from_det(det, p, c_miss, c_fa) for p in p_targets)
    n_tar = int(lab.sum())
    return VerificationMetrics(
        eer=eer,
        eer_threshold=eer_thr,
        min_dcf=dcfs,
        n_target=n_tar,
        n_nontarget=int(lab.size) - n_tar,
        c_miss=c_miss,
        c_fa=c_fa,
    )


def eer_confidence_interval(eer: float, n_target: int, n_nontarget: int, z: float = 1.96) -> tuple:
    """(low, high) of an approximate confidence interval of the EER (default 95 %).

    At the EER point P_miss = P_fa = e, and the EER is the mean of two proportions estimated on
    ``n_target`` and ``n_nontarget`` independent trials (as the HTER of Bengio & Mariethoz 2004), so its
    variance is e (1 - e) / n with the effective count 1 / n = (1 / n_target + 1 / n_nontarget) / 4.
    The interval is Wilson's score interval for a proportion e on n trials, which, unlike e +- z se,
    stays inside [0, 1] and does not collapse to a point at e = 0. Trials that reuse the same
    utterances and speakers are not independent, so the true interval is wider: read this as a lower
    bound on the uncertainty.
    """
    if n_target < 1 or n_nontarget < 1:
        raise ValueError(f"need target and non-target trials, got {n_target} and {n_nontarget}")
    n = 4.0 / (1.0 / n_target + 1.0 / n_nontarget)
    z2 = z * z
    centre = (eer + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * float(np.sqrt(eer * (1 - eer) / n + z2 / (4 * n * n)))
    return max(0.0, centre - half), min(1.0, centre + half)


def operating_point(det: DetCurve, threshold: float | None) -> tuple[float, float]:
    """(P_fa, P_miss) of the detector at ``threshold`` (one of ``det.thresholds``; None = +inf)."""
    t = np.inf if threshold is None else threshold
    i = min(int(np.searchsorted(det.thresholds, t)), det.thresholds.size - 1)
    return float(det.p_fa[i]), float(det.p_miss[i])


def cllr(llr: np.ndarray | Sequence[float], labels: np.ndarray | Sequence[int]) -> float:
    """Log-likelihood-ratio cost in bits (Brummer): 0 perfect, 1 for an uninformative LLR of 0.

    Cllr = 0.5 * (mean_tar log2(1 + e^-llr) + mean_non log2(1 + e^llr)); it penalises miscalibration.
    """
    s, lab = check_scores(llr, labels)
    c_tar = np.logaddexp(0.0, -s[lab]).mean()
    c_non = np.logaddexp(0.0, s[~lab]).mean()
    return float(0.5 * (c_tar + c_non) / np.log(2.0))


def bayes_threshold(p_target: float, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """The LLR threshold that minimises expected cost at prior ``p_target``: log(C_fa (1-p) / (C_miss p)).

    For C_miss = C_fa = 1 this is -logit(p): 4.595 at p = 0.01, 2.944 at p = 0.05.
    """
    return float(np.log(c_fa * (1.0 - p_target) / (c_miss * p_target)))


def actual_dcf(
    llr: np.ndarray | Sequence[float],
    labels: np.ndarray | Sequence[int],
    p_target: float,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> float:
    """Normalised DCF of calibrated scores (LLRs) thresholded at the Bayes threshold for ``p_target``.

    Equals minDCF for perfectly calibrated scores; the gap measures miscalibration at that prior.
    """
    s, lab = check_scores(llr, labels)
    accept = s >= bayes_threshold(p_target, c_miss, c_fa)
    p_miss = np.mean(~accept[lab])
    p_fa = np.mean(accept[~lab])
    dcf = c_miss * p_miss * p_target + c_fa * p_fa * (1.0 - p_target)
    return float(dcf / min(c_miss * p_target, c_fa * (1.0 - p_target)))
