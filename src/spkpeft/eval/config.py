"""The ``eval`` section of an experiment config: what ``spkpeft eval RUN`` evaluates and how it scores.

:class:`EvalConfig` holds the scoring options (what :meth:`spkpeft.eval.scorer.Scorer.fit` and
:func:`spkpeft.eval.pipeline.evaluate` take); :class:`RunEvalConfig` adds, flat in the same section, the
data and extraction settings of ``spkpeft eval``::

    eval:
      manifest: data/vox1_test.jsonl.gz       # utterances to embed (test set)
      trials: [Vox1-O=data/veri_test2.txt]     # trial lists: PATH or NAME=PATH
      cohort_manifest: ""                      # AS-norm cohort / calibration set; "" = data.train_manifest
      cohort_per_speaker: 20                   # utterances per cohort speaker (seeded subsample; 0 = all)
      top_k: 300
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from pathlib import Path

from spkpeft.config import load_yaml, parse
from spkpeft.eval.asnorm import DEFAULT_TOP_K
from spkpeft.eval.calibration import DEFAULT_FEATURES
from spkpeft.eval.metrics import DEFAULT_P_TARGETS

CHUNK_SECONDS = 20.0  # long-recording embedding windows (s) and their overlap: one default for all
OVERLAP_SECONDS = 2.0

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """Scoring options. LAP uses ``top_k: 600``; WeSpeaker uses 300."""

    subtract_mean: bool = True
    asnorm: bool = True
    top_k: int = DEFAULT_TOP_K
    calibrate: bool = True
    calibration_trials: int = 30_000
    calibration_features: list[str] = field(default_factory=lambda: list(DEFAULT_FEATURES))
    seed: int = 0
    p_targets: list[float] = field(default_factory=lambda: list(DEFAULT_P_TARGETS))


@dataclass
class RunEvalConfig(EvalConfig):
    """:class:`EvalConfig` plus the data and extraction settings of ``spkpeft eval``."""

    manifest: str = ""
    trials: list[str] = field(default_factory=list)
    cohort_manifest: str = ""
    cohort_per_speaker: int = 20
    batch_size: int = 16
    max_batch_seconds: float = 400.0
    chunk_seconds: float = CHUNK_SECONDS
    overlap_seconds: float = OVERLAP_SECONDS

    def scoring(self) -> EvalConfig:
        """The scoring options alone (what :func:`spkpeft.eval.pipeline.evaluate` takes)."""
        return EvalConfig(**{f.name: getattr(self, f.name) for f in fields(EvalConfig)})


def parse_trial_specs(specs: list[str]) -> dict[str, Path]:
    """``["PATH", "NAME=PATH"]`` -> {name: path}; a bare path is named by its file stem."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).stem, spec
        if not name or not path:
            raise ValueError(f"trial list spec {spec!r}: expected PATH or NAME=PATH")
        if name in out:
            raise ValueError(f"two trial lists named {name!r}; name them explicitly with NAME=PATH")
        out[name] = Path(path)
    return out


def run_eval_config(run: str | Path) -> tuple[RunEvalConfig, str]:
    """(the run's ``eval`` section, its training manifest) from ``RUN/config.yaml`` (defaults if absent).
    Only those two entries are read, so the method, back-end and loss registries are not needed."""
    path = Path(run) / "config.yaml"
    if not path.is_file():
        log.warning("%s not found: default eval settings, no training manifest", path)
        return RunEvalConfig(), ""
    data = load_yaml(path)
    cfg = parse(RunEvalConfig, data.get("eval"), f"{path}: eval")
    return cfg, str((data.get("data") or {}).get("train_manifest") or "")
