"""Evaluation pipeline: embeddings + trial lists + a fitted :class:`~spkpeft.eval.scorer.Scorer` -> raw
cosine, AS-norm and calibrated scores of every trial list, and their metrics.

Systems (each scored on every trial list, as the scorer has them):
* ``cosine``: cosine similarity, after subtracting the training-set mean embedding when the scorer has one;
* ``asnorm``: adaptive S-norm of those scores against the scorer's cohort (top K);
* ``calibrated``: the scorer's quality-aware calibration of the AS-norm (or cosine) scores, as LLRs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict

import numpy as np

from spkpeft.data.trials import Trial
from spkpeft.eval.config import EvalConfig
from spkpeft.eval.metrics import actual_dcf, cllr, compute_metrics, eer_confidence_interval
from spkpeft.eval.scorer import Scorer
from spkpeft.eval.table import EmbeddingTable, trial_labels

log = logging.getLogger(__name__)


def evaluate(
    embeddings: EmbeddingTable,
    trial_lists: Mapping[str, Sequence[Trial]],
    scorer: Scorer | None = None,
    config: EvalConfig | None = None,
) -> dict:
    """Score every trial list with every system of ``scorer`` and compute metrics.

    Returns ``{"config", "trial_lists": {name: {"n_trials", "n_target", "n_nontarget",
    "systems": {system: metrics dict}}}, "scores": {name: {"enroll", "test", "labels", system: (N,)}},
    "calibrator": Calibrator | None}``. ``scores`` holds arrays (for plots and score files) and the
    calibrator is an object; the rest is JSON-ready. Unlabelled lists get scores but no metrics.
    ``scorer``: fitted with :meth:`Scorer.fit` (default: plain cosine); ``config``: the options it was
    fitted with (recorded in the results) and the metrics' ``p_targets``.
    """
    scorer = scorer or Scorer()
    cfg = config or EvalConfig()
    if not trial_lists:
        raise ValueError("no trial lists to evaluate")
    results: dict = {"config": asdict(cfg), "trial_lists": {}, "scores": {}, "calibrator": scorer.calibrator}
    for name, trials in trial_lists.items():
        scores = scorer.score(embeddings, trials)
        labelled = all(t.label is not None for t in trials)
        if not labelled and any(t.label is not None for t in trials):
            first = next(i for i, t in enumerate(trials) if t.label is None)
            raise ValueError(f"trial list {name!r}: trial {first} has no label but others do (mixed list)")
        labels = trial_labels(trials) if labelled else None
        results["scores"][name] = {"enroll": [t.enroll for t in trials], "test": [t.test for t in trials]}
        results["scores"][name].update(scores, labels=labels)
        results["trial_lists"][name] = _list_metrics(name, len(trials), labels, scores, cfg.p_targets)
    return results


def _list_metrics(
    name: str,
    n_trials: int,
    labels: np.ndarray | None,
    scores: Mapping[str, np.ndarray],
    p_targets: Sequence[float],
) -> dict:
    entry: dict = {"n_trials": n_trials, "systems": {}}
    if labels is None:
        log.info("%s: trial list without labels: scores only, no metrics", name)
        return entry
    entry.update(n_target=int(labels.sum()), n_nontarget=int(labels.size - labels.sum()))
    for system, s in scores.items():
        m = compute_metrics(s, labels, p_targets).to_dict()
        m["eer_ci95"] = list(eer_confidence_interval(m["eer"], m["n_target"], m["n_nontarget"]))
        if system == "calibrated":
            m["cllr"] = cllr(s, labels)
            m["act_dcf"] = {f"{p:g}": actual_dcf(s, labels, p) for p in p_targets}
        entry["systems"][system] = m
        dcf = m["min_dcf"][f"{p_targets[0]:g}"]["value"]
        lo, hi = m["eer_ci95"]
        log.info("%s %s: EER %.3f%% (95%% CI %.2f-%.2f), minDCF(%g) %.4f",
                 name, system, 100 * m["eer"], 100 * lo, 100 * hi, p_targets[0], dcf)  # fmt: skip
    return entry
