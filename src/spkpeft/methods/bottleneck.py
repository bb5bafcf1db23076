"""Building blocks of the adapter family: the bottleneck adapter and the UniPELT-style scalar gate."""

from __future__ import annotations

import torch
from torch import nn


class Bottleneck(nn.Module):
    """``Up(ReLU(Down(x)))``: (..., D) -> (..., D) through a ``bottleneck``-wide hidden layer.

    Down keeps the default (Kaiming-uniform) init; Up is zero-initialised, so the branch outputs zero
    at the start and a model with the adapter equals the model without it.
    """

    def __init__(self, dim: int, bottleneck: int) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(torch.relu(self.down(x)))


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over time of (B, N, K) on the frames where ``mask`` (B, N) is True -> (B, K)."""
    if mask is None:
        return x.mean(1)
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


class Gate(nn.Module):
    """Per-utterance scalar gate ``g = mean_t sigmoid(w^T h_t + b)`` over the frames in ``mask``.

    ``w`` starts at zero and ``b`` at ``bias_init`` (1.0: g = 0.73, open but not saturated).
    """

    def __init__(self, dim: int, bias_init: float = 1.0) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.constant_(self.proj.bias, bias_init)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """h (B, N, D), mask (B, N) bool or None -> g (B,)."""
        return masked_mean(torch.sigmoid(self.proj(h)), mask).squeeze(-1)
