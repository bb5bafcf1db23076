"""The loss extension point: embeddings + speaker labels -> loss and class logits.

``LOSSES.build(cfg.name, cfg, embed_dim=E, num_classes=C)`` returns an ``nn.Module`` with
``forward(emb (B, E), labels (B,)) -> LossOutput(loss, logits (B, C))`` (logits without margin, for
accuracy), ``margin`` (the margin in use) and ``set_margin(m)`` (for :class:`MarginSchedule`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from spkpeft.registry import Registry

LOSSES: Registry = Registry("loss")


@dataclass
class LossConfig:
    """Fields common to every loss config; subclasses add their own (with paper defaults)."""

    name: str = ""


class LossOutput(NamedTuple):
    loss: torch.Tensor  # scalar
    logits: torch.Tensor  # (B, C), scaled, without margin


def check_batch(emb: torch.Tensor, labels: torch.Tensor, embed_dim: int, num_classes: int, who: str) -> None:
    """Raise ValueError naming the loss when embeddings or labels do not fit it."""
    if emb.dim() != 2 or emb.shape[1] != embed_dim:
        raise ValueError(f"{who}: embeddings must be (B, {embed_dim}), got {tuple(emb.shape)}")
    if labels.shape != emb.shape[:1] or labels.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            f"{who}: labels must be an integer tensor of shape ({emb.shape[0]},), "
            f"got {labels.dtype} {tuple(labels.shape)}"
        )
    # one tensor bool, not int(labels.min()): torch.compile would specialise on (recompile for) each value
    if bool(((labels < 0) | (labels >= num_classes)).any()):
        raise ValueError(
            f"{who}: labels must lie in [0, {num_classes}), got min {int(labels.min())} "
            f"max {int(labels.max())}"
        )
