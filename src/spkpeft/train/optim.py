"""Optimiser and learning-rate schedule: per-group learning rates, warm-up, then cosine, exponential or
linear decay.

Parameter groups are named: the method's (each method declares its names in its config's ``GROUPS``:
``adapter``, ``gate``, ``prompt``, ``lora``, ``spectral``, ``backbone``, ...) and the trainer's ``backend``
and ``loss``. Each named group gets the learning rate of its own key in ``optim.lr``, or
``optim.lr.default`` when it has none.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from spkpeft.config import ConfigError
from spkpeft.train.config import OPTIMIZERS, SCHEDULES, OptimConfig

log = logging.getLogger(__name__)


def param_groups(
    groups: Mapping[str, Sequence[nn.Parameter]],
    cfg: OptimConfig,
    where: str = "optim",
    known: Iterable[str] = (),
) -> list[dict]:
    """Torch param-group dicts (one per non-empty named group, trainable parameters only).

    ``lr`` keys that name no group of this model, none of ``known`` and not ``default`` are a
    :class:`ConfigError` (a typo would otherwise silently train that group at the default rate). The
    trainer passes as ``known`` every group a stage's model may have (``TrainModule.known_groups``), as
    the stages of a run share one ``optim`` section.
    """
    valid = set(groups) | set(known) | {"default"}
    bad = [k for k in cfg.lr if k not in valid]
    if bad:
        raise ConfigError(
            f"{where}.lr has unknown parameter group(s) {bad}; this model's groups: "
            f"{', '.join(sorted(groups))} (plus 'default')"
        )
    out, seen = [], set()
    for name, params in groups.items():
        ps = [p for p in params if p.requires_grad and id(p) not in seen]
        seen.update(id(p) for p in ps)
        if ps:
            out.append({"params": ps, "lr": cfg.lr_of(name), "name": name})
    if not out:
        raise ConfigError("nothing to train: every parameter group is frozen or empty")
    return out


def build_optimizer(groups: list[dict], cfg: OptimConfig) -> torch.optim.Optimizer:
    """Adam / AdamW / SGD over named param groups (each keeps its own ``lr``)."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups,
            lr=groups[0]["lr"],
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
    raise ConfigError(f"optim.optimizer={cfg.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")


def lr_factor(step: int, total: int, warmup: int, schedule: str, final_ratio: float) -> float:
    """Multiplier of the peak LR at optimiser step ``step`` (0-based) of ``total``.

    Linear warm-up from ``1/warmup`` to 1, then cosine or exponential decay reaching ``final_ratio`` at
    the last step; ``constant`` stays at 1 after warm-up; ``linear`` decays as transformers'
    ``get_linear_schedule_with_warmup`` (and TS-ASR training), reaching ``final_ratio`` one step after the
    last.
    """
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return final_ratio + (1 - final_ratio) * max(0.0, (total - step) / max(1, total - warmup))
    span = max(1, total - warmup - 1)
    progress = min(1.0, (step - warmup) / span)
    if schedule == "cosine":
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "exponential":
        return final_ratio**progress
    raise ConfigError(f"optim.schedule={schedule!r}; valid: {', '.join(SCHEDULES)}")


class _Factor:
    """Picklable LR lambda (so ``LambdaLR.state_dict`` stays plain)."""

    def __init__(self, total: int, warmup: int, schedule: str, final_ratio: float) -> None:
        self.total, self.warmup, self.schedule, self.final_ratio = total, warmup, schedule, final_ratio

    def __call__(self, step: int) -> float:
        return lr_factor(step, self.total, self.warmup, self.schedule, self.final_ratio)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int) -> LRScheduler:
    """Warm-up + decay over ``total_steps`` optimiser steps; call ``step()`` once per optimiser step."""
    if total_steps < 1:
        raise ValueError(f"a stage needs at least one optimiser step, got total_steps={total_steps}")
    warmup = cfg.warmup_for(total_steps)
    log.debug(
        "schedule %s: %d steps, %d warm-up, final ratio %g",
        cfg.schedule,
        total_steps,
        warmup,
        cfg.final_lr_ratio,
    )
    return LambdaLR(optimizer, _Factor(total_steps, warmup, cfg.schedule, cfg.final_lr_ratio))
