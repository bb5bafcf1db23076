"""The scorer: what scoring a trial needs besides the embeddings, fitted once on the training set.

:meth:`Scorer.fit` fixes the training-set mean (subtracted before cosine scoring), the AS-norm cohort
(per-speaker means, top ``top_k``) and the quality-aware calibrator (trained on cohort trials, or a
fitted one passed in). :meth:`Scorer.score` gives ``{"cosine", ["asnorm"], ["calibrated"]} -> (N,)``,
so :func:`spkpeft.eval.pipeline.evaluate` and :class:`spkpeft.SpeakerVerifier` score alike.
``spkpeft eval`` saves it with the model::

    MODEL/scoring/scoring.json        {"format", "system", "subtract_mean", "top_k", "eer_threshold",
                                       "threshold_source", "chunk_seconds", "overlap_seconds",
                                       "cohort_speakers"}
    MODEL/scoring/cohort.safetensors  "mean" (E,) and "cohort" (C, E) unit-norm per-speaker vectors
    MODEL/scoring/calibration.json    the calibrator (spkpeft.eval.calibration.Calibrator)

Runs evaluated before kept these files at the run's top level (an export, at its own): :meth:`load`
reads them there when ``MODEL/scoring/`` is absent.

Threshold. Calibrated: the score is an LLR and the threshold is the Bayes decision threshold
``log((1 - p) / p)`` at target prior ``p`` (default 0.01 -> 4.595; C_miss = C_fa = 1). Uncalibrated:
the EER threshold of the final uncalibrated system on the first labelled trial list of the evaluation
(``threshold_source`` names it); before any evaluation there is no threshold.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spkpeft.atomic import replace_dir
from spkpeft.data.trials import Trial
from spkpeft.eval.asnorm import DEFAULT_TOP_K, Cohort, asnorm_scores, build_cohort
from spkpeft.eval.calibration import Calibrator, train_calibration
from spkpeft.eval.config import CHUNK_SECONDS, OVERLAP_SECONDS, EvalConfig
from spkpeft.eval.metrics import bayes_threshold
from spkpeft.eval.scoring import cosine_scores
from spkpeft.eval.table import EmbeddingTable, trial_rows

log = logging.getLogger(__name__)

FORMAT = 1
SCORING_DIR = "scoring"
SCORING_FILE = "scoring.json"
COHORT_FILE = "cohort.safetensors"
CALIBRATION_FILE = "calibration.json"
FILES = (SCORING_FILE, COHORT_FILE, CALIBRATION_FILE)
DEFAULT_P_TARGET = 0.01


@dataclass
class TrainingSet:
    """Embeddings of the training (cohort) utterances and their speakers: ``utt2spk`` maps every id."""

    table: EmbeddingTable
    utt2spk: Mapping[str, str]


@dataclass
class Scorer:
    """Mean, cohort and calibrator (see the module docstring); ``Scorer()`` scores plain cosine.

    ``chunk_seconds``/``overlap_seconds``: the long-recording windows the scored embeddings were
    extracted with (:class:`spkpeft.eval.embed.ChunkSettings`), so a verifier embeds the same way."""

    mean: np.ndarray | None = None
    cohort: Cohort | None = None
    top_k: int = DEFAULT_TOP_K
    calibrator: Calibrator | None = None
    eer_threshold: float | None = None
    threshold_source: str = ""
    chunk_seconds: float = CHUNK_SECONDS
    overlap_seconds: float = OVERLAP_SECONDS

    @classmethod
    def fit(cls, train: TrainingSet | None, cfg: EvalConfig, calibrator: Calibrator | None = None) -> Scorer:
        """The scorer of ``cfg`` on the training set ``train`` (None: un-centred cosine only, plus
        ``calibrator`` when given)."""
        if train is None and (cfg.asnorm or cfg.calibrate) and calibrator is None:
            log.warning(
                "no training set given: AS-norm, mean subtraction and calibration training are skipped"
            )
        scorer = cls(top_k=cfg.top_k, calibrator=calibrator)
        if train is None:
            return scorer
        scorer.mean = train.table.mean() if cfg.subtract_mean else None
        if cfg.asnorm:
            scorer.cohort = build_cohort(train.table, train.utt2spk, subtract_mean=cfg.subtract_mean)
        if calibrator is None and cfg.calibrate:
            scorer.calibrator = scorer._train_calibrator(train, cfg)
        return scorer

    def _train_calibrator(self, train: TrainingSet, cfg: EvalConfig) -> Calibrator:
        system = self.system

        def score_fn(table: EmbeddingTable, trials: list[Trial]) -> np.ndarray:
            return self.score(table, trials, exclude=train.utt2spk, calibrated=False)[system]

        return train_calibration(
            train.table,
            train.utt2spk,
            score_fn,
            n_trials=cfg.calibration_trials,
            seed=cfg.seed,
            feature_names=tuple(cfg.calibration_features),
            info={"scores": system},
        )

    @property
    def system(self) -> str:
        """The uncalibrated score that is final or fed to the calibrator (``cosine`` | ``asnorm``)."""
        return "asnorm" if self.cohort is not None else "cosine"

    @property
    def calibrated(self) -> bool:
        return self.calibrator is not None

    def score(
        self,
        table: EmbeddingTable,
        trials: Sequence[Trial],
        exclude: Mapping[str, str] | None = None,
        rows: tuple[np.ndarray, np.ndarray] | None = None,
        calibrated: bool = True,
    ) -> dict[str, np.ndarray]:
        """``{"cosine", ["asnorm"], ["calibrated"]}`` -> (N,) scores of the trials. ``exclude`` maps
        utterances to speakers kept out of their own AS-norm cohort; ``rows``: :func:`trial_rows`."""
        rows = rows if rows is not None else trial_rows(table, trials)  # id lookup once for all systems
        out = {"cosine": cosine_scores(table, trials, self.mean, rows)}
        if self.cohort is not None:
            out["asnorm"] = asnorm_scores(
                table, trials, self.cohort, self.top_k, out["cosine"], exclude, rows
            )
        if calibrated and self.calibrator is not None:
            source = self.calibrator.info.get("scores", self.system)
            if source not in out:
                raise ValueError(f"calibrator was trained on {source!r} scores, but only {sorted(out)} exist")
            out["calibrated"] = self.calibrator.apply(table, trials, out[source], rows)
        return out

    def final(self, scores: Mapping[str, np.ndarray]) -> np.ndarray:
        return scores["calibrated"] if "calibrated" in scores else scores[self.system]

    def threshold(self, p_target: float = DEFAULT_P_TARGET) -> float | None:
        """Decision threshold on :meth:`final` scores (see the module docstring)."""
        return bayes_threshold(p_target) if self.calibrated else self.eer_threshold

    def set_threshold(self, trial_lists: Mapping[str, Mapping]) -> None:
        """Take the EER threshold of :attr:`system` on the first labelled list of
        :func:`spkpeft.eval.pipeline.evaluate`'s ``results["trial_lists"]``, and clip ``top_k`` to the
        cohort size (what AS-norm used)."""
        for name, entry in trial_lists.items():
            m = entry["systems"].get(self.system)
            if m is not None:
                self.eer_threshold = m["eer_threshold"]
                self.threshold_source = f"EER threshold of {self.system} scores on {name}"
                break
        if self.cohort is not None:
            self.top_k = min(self.top_k, len(self.cohort))

    # ------------------------------------------------------------------------------------ files
    def save(self, directory: str | Path) -> Path:
        """Write the files of the module docstring as the folder ``directory``, atomically: they are
        written to a temporary folder beside it that then replaces it, so a crash leaves either the old
        scorer or the new one, never a mix (and no file of an earlier evaluation outlives the new one).
        Returns the scoring.json path."""
        final = Path(directory)
        replace_dir(final, self._write)
        return final / SCORING_FILE

    def _write(self, d: Path) -> None:
        from safetensors.numpy import save_file

        tensors = {}
        if self.mean is not None:
            tensors["mean"] = np.asarray(self.mean, dtype=np.float32)
        if self.cohort is not None:
            tensors["cohort"] = np.asarray(self.cohort.vectors, dtype=np.float32)
        if tensors:
            save_file(tensors, str(d / COHORT_FILE))
        if self.calibrator is not None:
            self.calibrator.save(d / CALIBRATION_FILE)
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

    @classmethod
    def load(cls, model_dir: str | Path) -> Scorer:
        """The scorer saved with the model in ``model_dir`` (see :func:`scoring_dir`); a model never
        evaluated gives plain cosine scoring (a lone ``calibration.json`` is still used if it expects
        cosine scores)."""
        d = scoring_dir(Path(model_dir))
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
        if (meta["system"] == "asnorm") != (cohort is not None):
            raise ValueError(f"{d / SCORING_FILE} says {meta['system']!r} but its cohort does not match")
        return cls(
            mean=mean,
            cohort=cohort,
            top_k=int(meta["top_k"]),
            calibrator=cal,
            eer_threshold=meta.get("eer_threshold"),
            threshold_source=meta.get("threshold_source", ""),
            chunk_seconds=float(meta.get("chunk_seconds", CHUNK_SECONDS)),
            overlap_seconds=float(meta.get("overlap_seconds", OVERLAP_SECONDS)),
        )


def scoring_dir(model_dir: Path) -> Path:
    """Where the scorer of the model in ``model_dir`` lives: ``MODEL/scoring/``; for runs evaluated
    before it moved there, the old layout (the run's top level for ``RUN/model``, else the model
    directory itself) when that holds a scorer and ``MODEL/scoring/`` does not exist."""
    new = model_dir / SCORING_DIR
    if new.is_dir():
        return new
    from spkpeft.model import run_dir_of

    old = run_dir_of(model_dir) or model_dir
    if any((old / name).is_file() for name in FILES):
        log.info("scorer of %s read from %s (the layout before %s/)", model_dir, old, SCORING_DIR)
        return old
    return new
