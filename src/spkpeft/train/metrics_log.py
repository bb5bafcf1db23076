"""Training logs: one JSON object per line in ``RUN/logs/metrics.jsonl`` and, optionally, TensorBoard
event files in ``RUN/logs/tb/`` (tensorboard imported only when asked for)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class MetricsLog:
    """Append-only metrics sink; write from the main process only.

    ``log(step, {"loss": 1.2, "gate/adapter/3": 0.6})`` appends ``{"step": ..., **scalars}`` to the JSONL
    file and, with ``tensorboard=True``, adds each scalar to TensorBoard under its name.
    """

    def __init__(self, logs_dir: Path, tensorboard: bool = False) -> None:
        self.dir = Path(logs_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "metrics.jsonl"
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
