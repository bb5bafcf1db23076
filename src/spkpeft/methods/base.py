"""The method extension point: a parameter-efficient tuning method attached to a :class:`SpeechBackbone`.

A method is built by ``METHODS.build(cfg.name, cfg, backbone)``: the builder freezes what must be frozen,
injects its own modules and returns an object satisfying :class:`Method`. Each method owns a unique
parameter prefix (its registered name) so its parameters can be saved and loaded apart from the backbone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import nn

from spkpeft.registry import Registry


class MergeNotSupported(NotImplementedError):
    """The method adds modules (adapters, prompts) that cannot be folded into the backbone weights."""


@dataclass
class MethodConfig:
    """Fields common to every method config. Subclasses add their own (with paper defaults).

    ``GROUPS`` (a class constant, not a config field) declares the parameter-group names the method's
    ``param_groups()`` returns: the keys ``optim.lr`` and ``stages[].trainable`` may use for it. The
    optimiser accepts every group some registered method declares (:func:`declared_groups`).
    """

    GROUPS: ClassVar[tuple[str, ...]] = ()
    name: str = ""


@runtime_checkable
class Method(Protocol):
    """What the model, trainer and exporter need from a method.

    - ``own_parameters()``: name -> parameter of every parameter the method trains, names unique and
      prefixed by the method name; for ``full`` this is the backbone itself.
    - ``param_groups()``: group name (``adapter``, ``gate``, ``prompt``, ``lora``, ``spectral``,
      ``backbone``) -> parameters, for per-group learning rates. The union equals ``own_parameters``.
    - ``adapt_aggregate(x, mask)``: (B, T, D), (B, T) -> (B, T, D); applied by weighted-sum back-ends to
      the layer sum (the inter adapter). Identity for most methods.
    - ``merge()``: the transformers model with the update folded in (lora, dora, pissa, spectral), or
      :class:`MergeNotSupported`.
    - ``stats()``: scalars to log (e.g. per-layer gate values ``gate/adapter/3``).

    Optional: ``data_init(forward)``, a data-dependent initialisation; the trainer calls it once at the
    start of a fresh run (never on resume), before the first step, with ``forward()`` running the model
    without autograd on the first training batch (the prompt methods' ``prompt_init: frames``).
    """

    name: str
    cfg: MethodConfig

    def own_parameters(self) -> dict[str, nn.Parameter]: ...

    def param_groups(self) -> dict[str, list[nn.Parameter]]: ...

    def adapt_aggregate(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor: ...

    def merge(self) -> nn.Module: ...

    def stats(self) -> dict[str, float]: ...


METHODS: Registry = Registry("method")


def declared_groups() -> set[str]:
    """Every parameter-group name a registered method declares (the union of their ``GROUPS``).

    Complete once :mod:`spkpeft.methods` is imported (its modules register themselves).
    """
    return {g for name in METHODS.names() for g in METHODS.config_cls(name).GROUPS}
