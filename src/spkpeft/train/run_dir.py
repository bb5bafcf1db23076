"""The layout of a training run directory (``train.output_dir``)::

RUN/
  config.yaml            the resolved experiment config (every default filled in)
  speakers.json          speaker label -> class index map (spkpeft.data.speakers.SpeakerMap)
  checkpoints/step-N/    resumable training state (spkpeft.train.checkpoint)
  model/                 the final inference model (spkpeft.model.save_model)
  logs/metrics.jsonl     one JSON row per logged step
  logs/tb/               TensorBoard event files (train.tensorboard: true)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def speakers(self) -> Path:
        return self.root / "speakers.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def metrics(self) -> Path:
        return self.logs / "metrics.jsonl"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step-{step}"
