"""Margin warm-up (WeSpeaker's MarginScheduler semantics): the margin is ``initial`` until ``start``,
then ramps to ``final`` over ``ramp`` steps (linearly, or WeSpeaker's "exp" curve), then stays at
``final``. Steps are optimiser steps; :meth:`MarginSchedule.from_epochs` converts WeSpeaker's 1-based
epoch settings (``increase_start_epoch``, ``fix_start_epoch``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

_KINDS = ("linear", "exp")


@dataclass(frozen=True)
class MarginSchedule:
    """Margin as a function of the step.

    Args:
        final: the margin after the ramp (e.g. 0.2).
        start: first step of the ramp; before it the margin is ``initial``.
        ramp: steps from ``initial`` to ``final``; 0 jumps to ``final`` at ``start``.
        initial: the margin before the ramp (0 in WeSpeaker's recipes).
        kind: "linear", or "exp" (WeSpeaker: ratio = 1 - 1e-3 ** (progress), fast start, slow end).
    """

    final: float
    start: int = 0
    ramp: int = 0
    initial: float = 0.0
    kind: str = "linear"

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"margin schedule kind must be one of {_KINDS}, got {self.kind!r}")
        if self.start < 0 or self.ramp < 0:
            raise ValueError(f"margin schedule start and ramp must be >= 0, got {self.start}, {self.ramp}")

    @classmethod
    def from_epochs(
        cls,
        final: float,
        steps_per_epoch: int,
        increase_start_epoch: int,
        fix_start_epoch: int,
        initial: float = 0.0,
        kind: str = "linear",
    ) -> MarginSchedule:
        """WeSpeaker's settings: epochs are 1-based; the ramp runs from the start of
        ``increase_start_epoch`` to the start of ``fix_start_epoch``."""
        if fix_start_epoch < increase_start_epoch or increase_start_epoch < 1:
            raise ValueError(
                f"need 1 <= increase_start_epoch <= fix_start_epoch, got {increase_start_epoch}, "
                f"{fix_start_epoch}"
            )
        start = (increase_start_epoch - 1) * steps_per_epoch
        return cls(final, start, (fix_start_epoch - increase_start_epoch) * steps_per_epoch, initial, kind)

    def __call__(self, step: int) -> float:
        if step < self.start:
            return self.initial
        if self.ramp == 0 or step >= self.start + self.ramp:
            return self.final
        progress = (step - self.start) / self.ramp
        ratio = progress if self.kind == "linear" else 1.0 - math.exp(progress * math.log(1e-3))
        return self.initial + (self.final - self.initial) * ratio
