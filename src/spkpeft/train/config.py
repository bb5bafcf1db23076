"""The training sections of an experiment config: ``optim`` (optimiser, schedule) and ``train`` (the loop)."""

from __future__ import annotations

from dataclasses import dataclass, field

from spkpeft.config import ConfigError

PRECISIONS = ("no", "bf16", "fp16")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "exponential", "constant", "linear")


@dataclass
class OptimConfig:
    """Optimiser section of an experiment config (YAML key ``optim``).

    ``lr`` maps a parameter-group name to its peak learning rate; ``default`` covers groups not listed.
    Warm-up is ``warmup_steps`` optimiser steps, or ``warmup_fraction`` of the stage when steps is 0.
    After warm-up the rate decays from the peak to ``peak * final_lr_ratio`` at the end of the stage.
    """

    optimizer: str = "adam"
    lr: dict[str, float] = field(default_factory=lambda: {"default": 1e-3})
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    momentum: float = 0.9
    nesterov: bool = False
    warmup_steps: int = 0
    warmup_fraction: float = 0.0
    schedule: str = "cosine"
    final_lr_ratio: float = 0.01

    def validate(self, where: str = "optim") -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"{where}.optimizer={self.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"{where}.schedule={self.schedule!r}; valid: {', '.join(SCHEDULES)}")
        for k, v in self.lr.items():
            if not v > 0:
                raise ConfigError(f"{where}.lr.{k}={v}: learning rates must be > 0")
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError(f"{where}.warmup_fraction={self.warmup_fraction}: must be in [0, 1)")
        if self.warmup_steps < 0:
            raise ConfigError(f"{where}.warmup_steps={self.warmup_steps}: must be >= 0")
        low = 0 if self.schedule == "linear" else 1e-300  # linear may decay to 0 (transformers' linear)
        if not low <= self.final_lr_ratio <= 1:
            raise ConfigError(
                f"{where}.final_lr_ratio={self.final_lr_ratio}: must be in (0, 1] (0 with schedule linear)"
            )
        if len(self.betas) != 2:
            raise ConfigError(f"{where}.betas={self.betas}: needs exactly two values")

    def lr_of(self, group: str) -> float:
        if group in self.lr:
            return self.lr[group]
        if "default" in self.lr:
            return self.lr["default"]
        raise ConfigError(
            f"optim.lr has no entry for parameter group {group!r} and no 'default'; "
            f"given: {', '.join(self.lr)}"
        )

    def warmup_for(self, total_steps: int) -> int:
        if self.warmup_steps:
            return min(self.warmup_steps, total_steps)
        return int(round(self.warmup_fraction * total_steps))


@dataclass
class TrainConfig:
    """Loop settings. ``batch_size`` is per process and per forward pass: one optimiser step sees
    ``batch_size * processes * grad_accum`` utterances. ``max_steps`` (optimiser steps, 0 = none) caps
    each stage. A checkpoint is written at the end of each stage, every ``checkpoint_every`` optimiser
    steps and ``checkpoint_minutes`` minutes after the previous one (0 turns either off). ``log_every``:
    steps between log lines (loss, accuracy, learning rate, throughput) and metrics.jsonl rows.
    ``compile``: ``torch.compile`` the training module (batch lengths rounded up to 0.5 s buckets so that
    few shapes are compiled). ``checkpoint_layers``: activation checkpointing of every Transformer layer
    (keeps one layer's activations; the backward reruns each layer's forward)."""

    batch_size: int = 32
    epochs: int = 1
    max_steps: int = 0
    grad_accum: int = 1
    clip_grad_norm: float = 0.0
    mixed_precision: str = "no"
    checkpoint_every: int = 0
    checkpoint_minutes: float = 30.0
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 0
    output_dir: str = "runs/default"
    tensorboard: bool = False
    find_unused_parameters: bool = False
    dev_manifest: str = ""
    dev_trials: str = ""
    dev_every: int = 0
    dev_patience: int = 0
    compile: bool = False
    checkpoint_layers: bool = False

    def validate(self) -> None:
        if self.mixed_precision not in PRECISIONS:
            raise ConfigError(
                f"train.mixed_precision={self.mixed_precision!r}; valid: {', '.join(PRECISIONS)}"
            )
        for key in ("batch_size", "epochs", "grad_accum", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key}={getattr(self, key)}: must be >= 1")
        if self.dev_every and not (self.dev_manifest and self.dev_trials):
            raise ConfigError("train.dev_every > 0 needs train.dev_manifest and train.dev_trials")
        counts = ("max_steps", "checkpoint_every", "checkpoint_minutes", "clip_grad_norm")
        for key in (*counts, "dev_every", "dev_patience"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.{key}={getattr(self, key)}: must be >= 0")
        if not str(self.output_dir).strip():
            raise ConfigError(
                f"train.output_dir={self.output_dir!r} is empty (the run would be written into the current "
                "directory); give a directory, e.g. train.output_dir=runs/NAME"
            )
