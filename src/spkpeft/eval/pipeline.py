"""Evaluation pipeline: embeddings + trial lists -> raw cosine, AS-norm and calibrated scores + metrics.

Systems (each scored on every trial list):
* ``cosine``: cosine similarity, after subtracting the training-set mean embedding when a training set
  is given and ``subtract_mean`` is on;
* ``asnorm``: adaptive S-norm of those scores against per-speaker means of the training set (top K);
* ``calibrated``: quality-aware logistic-regression calibration of the AS-norm scores (or of the cosine
  scores when AS-norm is off) giving log-likelihood ratios; trained on cohort trials sampled from the
  training set unless a fitted :class:`Calibrator` is passed in (then it is applied as is).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from spkpeft.data.trials import Trial
from spkpeft.eval.asnorm import DEFAULT_TOP_K, Cohort, asnorm_scores, build_cohort
from spkpeft.eval.calibration import DEFAULT_FEATURES, Calibrator, train_calibration
from spkpeft.eval.metrics import DEFAULT_P_TARGETS, actual_dcf, cllr, compute_metrics, eer_confidence_interval
from spkpeft.eval.scoring import cosine_scores
from spkpeft.eval.table import EmbeddingTable, trial_labels, trial_rows

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """Scoring options (YAML section ``eval``). LAP uses ``top_k: 600``; WeSpeaker uses 300."""

    subtract_mean: bool = True
    asnorm: bool = True
    top_k: int = DEFAULT_TOP_K
    calibrate: bool = True
    calibration_trials: int = 30_000
    calibration_features: list[str] = field(default_factory=lambda: list(DEFAULT_FEATURES))
    seed: int = 0
    p_targets: list[float] = field(default_factory=lambda: list(DEFAULT_P_TARGETS))


@dataclass
class TrainingSet:
    """Embeddings of the training (cohort) utterances and their speakers: ``utt2spk`` maps every id."""

    table: EmbeddingTable
    utt2spk: Mapping[str, str]


class _Scorer:
    """Raw and AS-norm scoring with the mean and cohort fixed once from the training set."""

    def __init__(self, train: TrainingSet | None, cfg: EvalConfig) -> None:
        self.mean = train.table.mean() if train is not None and cfg.subtract_mean else None
        self.cohort: Cohort | None = None
        if train is not None and cfg.asnorm:
            self.cohort = build_cohort(train.table, train.utt2spk, subtract_mean=cfg.subtract_mean)
        self.top_k = cfg.top_k

    def score(
        self,
        table: EmbeddingTable,
        trials: Sequence[Trial],
        exclude: Mapping[str, str] | None = None,
        rows: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        rows = rows if rows is not None else trial_rows(table, trials)  # id lookup once for all systems
        out = {"cosine": cosine_scores(table, trials, self.mean, rows)}
        if self.cohort is not None:
            out["asnorm"] = asnorm_scores(
                table, trials, self.cohort, self.top_k, out["cosine"], exclude, rows
            )
        return out

    @property
    def last_system(self) -> str:
        return "asnorm" if self.cohort is not None else "cosine"


def evaluate(
    embeddings: EmbeddingTable,
    trial_lists: Mapping[str, Sequence[Trial]],
    cohort: TrainingSet | None = None,
    calibration: Calibrator | None = None,
    config: EvalConfig | None = None,
) -> dict:
    """Score every trial list with every available system and compute metrics.

    Returns ``{"config", "trial_lists": {name: {"n_trials", "n_target", "n_nontarget",
    "systems": {system: metrics dict}}}, "scores": {name: {"enroll", "test", "labels", system: (N,)}},
    "calibrator": Calibrator | None}``. ``scores`` holds arrays (for plots and score files) and the
    calibrator is an object; the rest is JSON-ready. Unlabelled lists get scores but no metrics.
    ``cohort``: the training set (embeddings + speakers) that gives the mean embedding, the AS-norm
    cohort and the calibration trials; without it only un-centred cosine scores are produced.
    """
    train = cohort
    cfg = config or EvalConfig()
    if not trial_lists:
        raise ValueError("no trial lists to evaluate")
    if train is None and (cfg.asnorm or cfg.calibrate) and calibration is None:
        log.warning("no training set given: AS-norm, mean subtraction and calibration training are skipped")
    scorer = _Scorer(train, cfg)
    calibrator = calibration
    if calibrator is None and cfg.calibrate and train is not None:
        calibrator = _train_calibrator(scorer, train, cfg)
    results: dict = {"config": asdict(cfg), "trial_lists": {}, "scores": {}, "calibrator": calibrator}
    for name, trials in trial_lists.items():
        rows = trial_rows(embeddings, trials)
        scores = scorer.score(embeddings, trials, rows=rows)
        if calibrator is not None:
            source = calibrator.info.get("scores", scorer.last_system)
            if source not in scores:
                raise ValueError(
                    f"calibrator was trained on {source!r} scores, but only {sorted(scores)} exist"
                )
            scores["calibrated"] = calibrator.apply(embeddings, trials, scores[source], rows)
        labelled = all(t.label is not None for t in trials)
        if not labelled and any(t.label is not None for t in trials):
            first = next(i for i, t in enumerate(trials) if t.label is None)
            raise ValueError(f"trial list {name!r}: trial {first} has no label but others do (mixed list)")
        labels = trial_labels(trials) if labelled else None
        results["scores"][name] = {"enroll": [t.enroll for t in trials], "test": [t.test for t in trials]}
        results["scores"][name].update(scores, labels=labels)
        results["trial_lists"][name] = _list_metrics(name, len(trials), labels, scores, cfg.p_targets)
    return results


def _train_calibrator(scorer: _Scorer, train: TrainingSet, cfg: EvalConfig) -> Calibrator:
    system = scorer.last_system

    def score_fn(table: EmbeddingTable, trials: list[Trial]) -> np.ndarray:
        return scorer.score(table, trials, exclude=train.utt2spk)[system]

    return train_calibration(
        train.table,
        train.utt2spk,
        score_fn,
        n_trials=cfg.calibration_trials,
        seed=cfg.seed,
        feature_names=tuple(cfg.calibration_features),
        info={"scores": system},
    )


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
