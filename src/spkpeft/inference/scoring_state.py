"""What scoring a new trial needs besides the model: the training mean, the AS-norm cohort, the calibrator
and the decision threshold, saved with a run by ``spkpeft eval`` (and copied by ``spkpeft export``).

Files (in the run directory or an exported model directory)::

    scoring.json          {"format", "system", "subtract_mean", "top_k", "eer_threshold",
                           "threshold_source", "chunk_seconds", "overlap_seconds", "cohort_speakers"}
    cohort.safetensors    "mean" (E,) and "cohort" (C, E) unit-norm per-speaker vectors (when used)
    calibration.json      the quality-aware calibrator (spkpeft.eval.calibration.Calibrator)

``score()`` scores exactly as :func:`spkpeft.eval.pipeline.evaluate` did on the test set (cosine after
mean subtraction, AS-norm against the same cohort, then the calibrator), so a verified pair gets the
score it would have had in the report.

Threshold. Calibrated: the score is an LLR and the threshold is the Bayes decision threshold
``log((1 - p) / p)`` at target prior ``p`` (default 0.01 -> 4.595; C_miss = C_fa = 1). Uncalibrated:
the EER threshold of the final uncalibrated system on the first labelled trial list of the evaluation
(``threshold_source`` names it); before any evaluation there is no threshold.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spkpeft.data.trials import Trial
from spkpeft.eval.asnorm import Cohort, asnorm_scores
from spkpeft.eval.calibration import Calibrator
from spkpeft.eval.metrics import bayes_threshold
from spkpeft.eval.scoring import cosine_scores
from spkpeft.eval.table import EmbeddingTable, trial_rows

log = logging.getLogger(__name__)

FORMAT = 1
SCORING_FILE = "scoring.json"
COHORT_FILE = "cohort.safetensors"
CALIBRATION_FILE = "calibration.json"
DEFAULT_P_TARGET = 0.01


@dataclass
class ScoringState:
    """``system``: the uncalibrated score that is final or fed to the calibrator (cosine | asnorm)."""

    system: str = "cosine"
    mean: np.ndarray | None = None
    cohort: Cohort | None = None
    top_k: int = 300
    calibrator: Calibrator | None = None
    eer_threshold: float | None = None
    threshold_source: str = ""
    chunk_seconds: float = 20.0
    overlap_seconds: float = 2.0

    @property
    def calibrated(self) -> bool:
        return self.calibrator is not None

    def threshold(self, p_target: float = DEFAULT_P_TARGET) -> float | None:
        """Decision threshold on :meth:`final` scores (see the module docstring)."""
        return bayes_threshold(p_target) if self.calibrated else self.eer_threshold

    def score(self, table: EmbeddingTable, trials: list[Trial]) -> dict[str, np.ndarray]:
        """{"cosine", ["asnorm"], ["calibrated"]} -> (N,) scores of the trials."""
        rows = trial_rows(table, trials)
        out = {"cosine": cosine_scores(table, trials, self.mean, rows)}
        if self.system == "asnorm":
            if self.cohort is None:
                raise ValueError("scoring state says asnorm but has no cohort")
            out["asnorm"] = asnorm_scores(table, trials, self.cohort, self.top_k, out["cosine"], rows=rows)
        if self.calibrator is not None:
            out["calibrated"] = self.calibrator.apply(table, trials, out[self.system], rows)
        return out

    def final(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        return scores["calibrated"] if "calibrated" in scores else scores[self.system]

    # ------------------------------------------------------------------------------------ files
    def save(self, directory: str | Path) -> Path:
        from safetensors.numpy import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tensors = {}
        if self.mean is not None:
            tensors["mean"] = np.asarray(self.mean, dtype=np.float32)
        if self.cohort is not None:
            tensors["cohort"] = np.asarray(self.cohort.vectors, dtype=np.float32)
        if tensors:
            save_file(tensors, str(d / COHORT_FILE))
        elif (d / COHORT_FILE).exists():
            (d / COHORT_FILE).unlink()
        if self.calibrator is not None:
            self.calibrator.save(d / CALIBRATION_FILE)
        elif (d / CALIBRATION_FILE).exists():
            (d / CALIBRATION_FILE).unlink()  # a stale calibrator must not outlive a new evaluation
        meta = {
            "format": FORMAT,
            "system": self.system,
            "subtract_mean": self.mean is not None,
            "top_k": self.top_k,
            "eer_threshold": self.eer_threshold,
            "threshold_source": self.threshold_source,
            "chunk_seconds": self.chunk_seconds,
            "overlap_seconds": self.overlap_seconds,
            "cohort_speakers": None if self.cohort is None else list(self.cohort.speakers),
        }
        (d / SCORING_FILE).write_text(json.dumps(meta, indent=1) + "\n")
        return d / SCORING_FILE

    @classmethod
    def load(cls, directory: str | Path) -> ScoringState:
        """The state saved in ``directory``; a directory without ``scoring.json`` gives plain cosine
        scoring (no mean, no cohort; a lone ``calibration.json`` is still used if it expects cosine)."""
        d = Path(directory)
        cal = Calibrator.load(d / CALIBRATION_FILE) if (d / CALIBRATION_FILE).is_file() else None
        if not (d / SCORING_FILE).is_file():
            if cal is not None and cal.info.get("scores", "cosine") != "cosine":
                raise ValueError(
                    f"{d / CALIBRATION_FILE} expects {cal.info['scores']!r} scores but {d / SCORING_FILE} "
                    "(mean and cohort) is missing: run `spkpeft eval` again"
                )
            return cls(calibrator=cal)
        meta = json.loads((d / SCORING_FILE).read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{d / SCORING_FILE}: format {meta.get('format')}, this code reads {FORMAT}")
        mean = cohort = None
        if meta["subtract_mean"] or meta["cohort_speakers"] is not None:
            from safetensors.numpy import load_file

            tensors = load_file(str(d / COHORT_FILE))
            mean = tensors.get("mean")
            if meta["cohort_speakers"] is not None:
                cohort = Cohort(meta["cohort_speakers"], tensors["cohort"], mean)
        return cls(
            system=meta["system"],
            mean=mean,
            cohort=cohort,
            top_k=int(meta["top_k"]),
            calibrator=cal,
            eer_threshold=meta.get("eer_threshold"),
            threshold_source=meta.get("threshold_source", ""),
            chunk_seconds=float(meta.get("chunk_seconds", 20.0)),
            overlap_seconds=float(meta.get("overlap_seconds", 2.0)),
        )


def state_from_results(
    results: dict, mean: np.ndarray | None, cohort: Cohort | None, top_k: int, chunks: tuple[float, float]
) -> ScoringState:
    """The state that reproduces the scores of :func:`spkpeft.eval.pipeline.evaluate` ``results``."""
    system = "asnorm" if cohort is not None else "cosine"
    threshold, source = None, ""
    for name, entry in results["trial_lists"].items():
        m = entry["systems"].get(system)
        if m is not None:
            threshold, source = m["eer_threshold"], f"EER threshold of {system} scores on {name}"
            break
    if cohort is not None:
        top_k = min(top_k, len(cohort))  # what asnorm_scores used on the test trials (clipped, warned once)
    cal = results.get("calibrator")
    return ScoringState(system, mean, cohort, top_k, cal, threshold, source, *chunks)
