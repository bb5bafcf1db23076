"""Layer Attentive Pooling (LAP; arXiv 2512.22148, code sadPororo/LAP): time-dynamic layer weighting.

All hidden states arranged (B, D, T, L+1) -> BatchNorm2d(D) -> 1x1 conv D->D -> split channels into H
groups ("heads") -> per group and frame, mean and max over the group's channels (B, H, T, L+1) -> each
through a squeeze-excitation over layers (L+1 -> (L+1)//2 -> L+1) -> weights sigmoid(mean + max branch),
dropout -> multiply -> MAX over layers -> concatenate groups (B, D, T) -> conv1d D->C -> BatchNorm.

Every step is per frame, so padded frames only touch real ones through batch statistics, which come from
real frames (:class:`MaskedBatchNorm`). The squeeze-excitation is shared across groups by default
(IMPLEMENTATION_NOTES §3); the released code has one per group (``share_se: false``).
"""

from __future__ import annotations

import torch
from torch import nn

from spkpeft.backends.masking import MaskedBatchNorm, zero_padded


class LayerSqueezeExcite(nn.Module):
    """(..., H, T, L+1) layer statistics -> (..., H, T, L+1) scores, shared or per-group weights."""

    def __init__(self, num_states: int, heads: int, shared: bool) -> None:
        super().__init__()
        hidden = num_states // 2
        g = 1 if shared else heads
        self.sq_weight = nn.Parameter(torch.empty(g, num_states, hidden))
        self.sq_bias = nn.Parameter(torch.zeros(g, 1, hidden))
        self.ex_weight = nn.Parameter(torch.empty(g, hidden, num_states))
        self.ex_bias = nn.Parameter(torch.zeros(g, 1, num_states))
        for w in (self.sq_weight, self.ex_weight):  # nn.Linear's default scale, per group
            nn.init.uniform_(w, -(w.shape[1] ** -0.5), w.shape[1] ** -0.5)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """s: (B, H, T, L+1) -> (B, H, T, L+1); group weights broadcast over B and T."""
        z = torch.relu(torch.matmul(s, self.sq_weight) + self.sq_bias)
        return torch.matmul(z, self.ex_weight) + self.ex_bias


class LayerAttentivePooling(nn.Module):
    """LAP: (L+1, B, T, D) hidden states, (B, T) mask -> (B, C, T), zero on padded frames.

    Args:
        num_states: L+1 (at least 2).
        hidden_size: D; must be divisible by ``heads``.
        channels: C, output channels.
        heads: H channel groups (16).
        dropout: dropout on the layer weights (0.1).
        share_se: one squeeze-excitation for all groups (notes) or one per group (released code).
    """

    def __init__(
        self,
        num_states: int,
        hidden_size: int,
        channels: int,
        heads: int = 16,
        dropout: float = 0.1,
        share_se: bool = True,
    ) -> None:
        super().__init__()
        if num_states < 2:
            raise ValueError(f"LAP needs at least 2 hidden states to weigh, got {num_states}")
        if hidden_size % heads:
            raise ValueError(f"LAP: hidden size {hidden_size} must be divisible by heads={heads}")
        self.heads = heads
        self.in_norm = MaskedBatchNorm(hidden_size)
        self.in_proj = nn.Conv2d(hidden_size, hidden_size, kernel_size=1) if heads > 1 else nn.Identity()
        self.se = LayerSqueezeExcite(num_states, heads, share_se)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Conv1d(hidden_size, channels, kernel_size=1, bias=False)  # BN follows
        self.out_norm = MaskedBatchNorm(channels)
        self.last_weights: torch.Tensor | None = None  # (L+1,) mean attention of the last forward

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = hidden_states.permute(1, 3, 2, 0).to(self.in_norm.weight.dtype)  # (B, D, T, L+1)
        x = self.in_proj(self.in_norm(x, mask))
        b, d, t, n = x.shape
        x = x.view(b, self.heads, d // self.heads, t, n)
        scores = self.se(x.mean(dim=2)) + self.se(x.amax(dim=2))  # (B, H, T, L+1)
        weights = torch.sigmoid(scores)
        self._remember(weights, mask)
        x = (x * self.dropout(weights)[:, :, None]).amax(dim=-1)  # (B, H, D/H, T)
        x = zero_padded(x.reshape(b, d, t), mask)
        return self.out_norm(self.out_proj(x), mask)

    @torch.no_grad()
    def _remember(self, weights: torch.Tensor, mask: torch.Tensor) -> None:
        """Mean layer attention over batch, groups and real frames, for :meth:`layer_weights`."""
        w = weights * mask[:, None, :, None].to(weights.dtype)
        self.last_weights = w.sum(dim=(0, 1, 2)) / (mask.sum() * weights.shape[1])
