"""The back-end extension point: hidden states of every backbone layer -> one speaker embedding.

A back-end is built by ``BACKENDS.build(cfg.name, cfg, num_states=L+1, hidden_size=D)`` and is an
``nn.Module`` with

- ``embed_dim``: E, the embedding size;
- ``forward(hidden_states (L+1, B, T, D), mask (B, T) bool, post_aggregate=None) -> (B, E)``, where
  ``post_aggregate(x (B, T, D), mask) -> (B, T, D)`` is applied to the weighted layer sum (UniPET's inter
  adapter); back-ends without a layer sum raise :class:`ValueError` when it is given;
- ``layer_weights() -> (L+1,) | None``: the layer weighting, for logs and reports.

Padding never changes an utterance's embedding: padded frames are kept out of every statistic, every
attention and every convolution's view of the real frames (see :mod:`spkpeft.backends.masking`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch

from spkpeft.registry import Registry

PostAggregate = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

BACKENDS: Registry = Registry("backend")


@dataclass
class BackendConfig:
    """Fields common to every back-end config; subclasses add their own (with paper defaults).

    ``LAYER_SUM`` (a class constant, not a config field) declares that the back-end has a weighted layer
    sum and applies ``post_aggregate`` to it; back-ends declaring False reject ``post_aggregate``.
    """

    LAYER_SUM: ClassVar[bool] = False
    name: str = ""


def layer_sum_backends() -> list[str]:
    """The registered back-ends that declare a weighted layer sum (so take an inter adapter)."""
    return [n for n in BACKENDS.names() if BACKENDS.config_cls(n).LAYER_SUM]


def check_inputs(
    hidden_states: torch.Tensor, mask: torch.Tensor, num_states: int, hidden_size: int, who: str
) -> None:
    """Raise ValueError naming the back-end when the inputs do not match the shapes it was built for.

    Args:
        hidden_states: (L+1, B, T, D).
        mask: (B, T) bool, True on real frames.
    """
    if hidden_states.dim() != 4:
        raise ValueError(
            f"{who}: hidden_states must be (L+1, B, T, D), got shape {tuple(hidden_states.shape)}"
        )
    n, b, t, d = hidden_states.shape
    if n != num_states or d != hidden_size:
        raise ValueError(
            f"{who}: built for {num_states} hidden states of size {hidden_size}, got {n} states of size {d}"
        )
    if mask.shape != (b, t) or mask.dtype != torch.bool:
        raise ValueError(
            f"{who}: mask must be bool of shape (B, T)=({b}, {t}), got {mask.dtype} {tuple(mask.shape)}"
        )
    if not bool(mask.any(dim=1).all()):
        empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
        raise ValueError(f"{who}: rows {empty} of the mask have no real frame; every utterance needs one")


def reject_post_aggregate(post_aggregate: PostAggregate | None, who: str) -> None:
    """Back-ends without a weighted layer sum cannot apply an inter adapter."""
    if post_aggregate is not None:
        raise ValueError(
            f"backend {who!r} has no weighted layer sum, so post_aggregate (the inter adapter) cannot be "
            f"applied; use a weighted-sum back-end ({', '.join(layer_sum_backends())}) or a method without "
            "one"
        )
