"""Training logs: one JSON object per line in ``RUN/logs/metrics.jsonl`` and, optionally, TensorBoard
event files in ``RUN/logs/tb/`` (tensorboard imported only when asked for)."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


class MetricsLog:
    """Metrics sink; write from the main process only. A fresh run starts the file empty; a resumed one
    (``resume_step``) keeps the rows up to its checkpoint's step and appends.

    ``log(step, {"loss": 1.2, "gate/adapter/3": 0.6})`` appends ``{"step": ..., **scalars}`` to the JSONL
    file and, with ``tensorboard=True``, adds each scalar to TensorBoard under its name.
    """

    def __init__(self, logs_dir: Path, tensorboard: bool = False, resume_step: int | None = None) -> None:
        self.dir = Path(logs_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "metrics.jsonl"
        if resume_step is None:
            self.path.write_text("")  # a fresh run
        elif self.path.is_file():  # drop rows a killed run logged after its last checkpoint
            keep = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in keep))
        self._fh = self.path.open("a")
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:  # pragma: no cover - depends on the environment
                raise RuntimeError(
                    "train.tensorboard is true but tensorboard is not installed: "
                    "pip install 'spkpeft[tensorboard]' or set train.tensorboard=false"
                ) from e
            self._tb = SummaryWriter(str(self.dir / "tb"))

    def log(self, step: int, scalars: dict[str, Any]) -> None:
        row = {"step": step}
        for k, v in scalars.items():
            row[k] = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
        self._fh.write(json.dumps(row, allow_nan=True) + "\n")
        self._fh.flush()
        if self._tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, float) and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All rows of a ``metrics.jsonl`` file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class StepMeter:
    """Running loss / accuracy / throughput between two log rows (this process's counts)."""

    def __init__(self) -> None:
        self.loss, self.n_batches, self.correct, self.count = 0.0, 0, 0, 0
        self.last_loss = float("nan")
        self.t0 = time.perf_counter()

    def add(self, loss: float, correct: torch.Tensor, count: int) -> None:
        self.loss += loss
        self.last_loss = loss
        self.n_batches += 1
        self.correct += int(correct)
        self.count += count

    def flush(self, acc: Any) -> dict[str, float]:
        counts = acc.reduce(torch.tensor([self.correct, self.count], device=acc.device, dtype=torch.float64))
        dt = max(time.perf_counter() - self.t0, 1e-9)
        row = {
            "loss": self.loss / max(self.n_batches, 1),
            "acc": float(counts[0] / counts[1].clamp(min=1)),
            "utt_per_s": float(counts[1]) / dt,
        }
        self.__init__()
        return row


def model_stats(tm: Any) -> dict[str, float]:
    """The method's ``stats()`` (e.g. ``gate/adapter/3``) and the back-end's ``layer_weight/<i>``."""
    row = {k: float(v) for k, v in tm.model.method.stats().items()}
    weights = tm.model.backend.layer_weights() if hasattr(tm.model.backend, "layer_weights") else None
    if weights is not None:
        row.update({f"layer_weight/{i}": float(w) for i, w in enumerate(weights.flatten().tolist())})
    return row
