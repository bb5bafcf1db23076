"""Building what a stage needs: the train module (model + loss head), stage switches, the margin
schedule, the loop position, and the path check done before training starts."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spkpeft.config import ConfigError
from spkpeft.train.experiment import ExperimentConfig, Stage
from spkpeft.train.module import TrainModule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Position:
    """Where the loop is: stage index, epoch within the stage, micro-batches consumed in that epoch,
    optimiser steps in the stage and in the run, and whether the stage has finished."""

    stage: int = 0
    epoch: int = 0
    batch: int = 0
    stage_step: int = 0
    global_step: int = 0
    stage_complete: bool = False

    def advanced(self, epoch: int, batch: int) -> Position:
        return dataclasses.replace(
            self, epoch=epoch, batch=batch, stage_step=self.stage_step + 1, global_step=self.global_step + 1
        )

    def next_epoch(self, epoch: int) -> Position:
        return dataclasses.replace(self, epoch=epoch, batch=0)

    def completed(self) -> Position:
        return dataclasses.replace(self, stage_complete=True)

    def fresh_stage(self, stage: int) -> Position:
        return Position(stage=stage, global_step=self.global_step)

    def to_state(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Position:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in state.items() if k in names})


def check_paths(stages: list[Stage]) -> None:
    """Every file the stages read must exist; ``FileNotFoundError`` names the config key and the path."""
    for s in stages:
        d = s.data
        needed = [("train_manifest", d.train_manifest)]
        if d.noise_prob > 0:
            needed.append(("noise_manifest", d.noise_manifest))
        if d.rir_prob > 0:
            needed.append(("rir_manifest", d.rir_manifest))
        for key, value in needed:
            if not value:
                raise ConfigError(f"data.{key} is empty (stage {s.name!r}): set it to a lhotse CutSet file")
            if not Path(value).is_file():
                raise FileNotFoundError(
                    f"data.{key} (stage {s.name!r}) does not exist: {value} (prepare it with "
                    f"`spkpeft data prepare ...` or override it with --set data.{key}=PATH)"
                )


def build_head(loss_cfg: Any, embed_dim: int, num_classes: int, seed: int) -> nn.Module:
    """The loss head (AAM etc.), its weights seeded by ``seed`` without touching the global RNG."""
    from spkpeft.losses import LOSSES

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LOSSES.build(loss_cfg.name, loss_cfg, embed_dim=embed_dim, num_classes=num_classes)


def build_train_module(cfg: ExperimentConfig, stage: Stage, num_classes: int) -> TrainModule:
    """Speaker model (with ``stage.method``) + loss head (``stage.loss``) for ``num_classes`` classes."""
    from spkpeft.train.experiment import build_model

    model = build_model(cfg, stage.method)
    model.backbone.checkpoint_layers = cfg.train.checkpoint_layers
    tm = TrainModule(model, build_head(stage.loss, model.embed_dim, num_classes, cfg.train.seed + 2))
    tm.method_cfg, tm.loss_cfg = stage.method, stage.loss
    return tm


def switch_stage(tm: TrainModule, cfg: ExperimentConfig, stage: Stage) -> None:
    """Apply a stage's method and loss settings to an existing train module (a no-op when unchanged).

    A new method is built on the same backbone, allowed when the current one trains nothing
    (``frozen`` -> ``full``, ``frozen`` -> ``lora``, ...), or when the next one is ``full`` and the current
    one merges into the weights (``lora`` / ``dora`` / ``pissa`` / ``spectral`` -> ``full``: the update is
    folded into the backbone in place, WeSpeaker's w2v-BERT stage 2); otherwise the learned update would
    be lost. A changed loss config rebuilds the head with the old weights (same shapes required).
    """
    from spkpeft.methods import METHODS

    if stage.method != tm.method_cfg:
        current = tm.model.method
        if current.own_parameters() and not _merge_before_full(current, stage):
            raise ConfigError(
                f"stages[{stage.index}].method: cannot switch from {current.name!r} (it has trained "
                f"parameters) to {stage.method.name!r}; only a method that trains nothing (frozen) can be "
                "replaced, or one that merges into the weights (lora, dora, pissa, spectral) by full"
            )
        if hasattr(current, "detach"):
            current.detach()  # remove its hooks so the new method can attach
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.train.seed + 3 + stage.index)
            method = METHODS.build(stage.method.name, stage.method, tm.model.backbone)
        tm.model.set_method(method)
        device = next(tm.model.backend.parameters()).device
        tm.model.to(device)
        tm.refresh()
        tm.method_cfg = stage.method
    if stage.loss != tm.loss_cfg:
        old = tm.head.state_dict()
        num_classes = int(tm.head.num_classes)
        head = build_head(stage.loss, tm.model.embed_dim, num_classes, cfg.train.seed + 2)
        head.load_state_dict(old)
        tm.head = head.to(next(iter(old.values())).device) if old else head
        tm.loss_cfg = stage.loss


def _merge_before_full(current: Any, stage: Stage) -> bool:
    """Fold a mergeable method's update into the backbone in place when the next stage trains it all."""
    from spkpeft.methods import MergeNotSupported

    if stage.method.name != "full" or getattr(current, "merged", None) is not False:
        return False
    try:
        current.merge(inplace=True)
    except MergeNotSupported:
        return False
    log.info("stage %d: %s merged into the backbone before full fine-tuning", stage.index, current.name)
    return True


def margin_schedule(stage: Stage, head: nn.Module, total_steps: int) -> Any:
    """A :class:`MarginSchedule` over the stage's steps, or None (then the margin is the loss config's)."""
    from spkpeft.losses import MarginSchedule

    final = getattr(stage.loss, "margin", None)
    if stage.margin_warmup_end <= 0:
        if final is not None:
            head.set_margin(final)
        return None
    if final is None:
        raise ConfigError(
            f"stages[{stage.index}] has a margin warm-up but loss {stage.loss.name!r} has no margin"
        )
    start = int(round(stage.margin_warmup_start * total_steps))
    ramp = int(round(stage.margin_warmup_end * total_steps)) - start
    return MarginSchedule(final=final, start=start, ramp=ramp)
