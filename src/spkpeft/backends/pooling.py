"""Temporal pooling over real frames: statistics (TSTP) and attentive statistics (ASTP)."""

from __future__ import annotations

import torch
from torch import nn

from spkpeft.backends.masking import MaskedBatchNorm, drop_frames, masked_mean_std, masked_softmax


class StatsPool(nn.Module):
    """TSTP: mean and standard deviation over the real frames, concatenated.

    (B, C, T), mask (B, T) -> (B, 2C).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_dim = 2 * channels

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        mean, std = masked_mean_std(x, mask)
        return torch.cat([mean, std], dim=1)


class AttentiveStatsPool(nn.Module):
    """ASTP, context-aware (ECAPA-TDNN, Desplanques et al. 2020): channel-wise attention over time.

    Attention scores come from ``[x, mean, std]`` (the global context, taken over real frames):
    ``conv1d(3C -> bottleneck) -> ReLU -> BN [-> tanh] -> conv1d(-> C)``, softmax over real frames; then
    attentive mean and std. (B, C, T), mask (B, T) -> (B, 2C).

    Args:
        channels: C.
        bottleneck: hidden width of the attention (LAP: C/2; ECAPA: 128).
        tanh: apply tanh after the BN (ECAPA's attention; LAP's ASTP has none).
        frame_drop: training-time probability of dropping a real frame from the attention (LAP: 0.1).
        global_context: feed [x, mean, std] (True) or x alone to the attention.
    """

    def __init__(
        self,
        channels: int,
        bottleneck: int,
        tanh: bool = False,
        frame_drop: float = 0.0,
        global_context: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 <= frame_drop < 1.0:
            raise ValueError(f"frame_drop must be in [0, 1), got {frame_drop}")
        self.global_context, self.tanh, self.frame_drop = global_context, tanh, frame_drop
        self.conv1 = nn.Conv1d(channels * (3 if global_context else 1), bottleneck, kernel_size=1)
        self.norm = MaskedBatchNorm(bottleneck)
        self.conv2 = nn.Conv1d(bottleneck, channels, kernel_size=1)
        self.out_dim = 2 * channels

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        t = x.shape[-1]
        a = x
        if self.global_context:
            mean, std = masked_mean_std(x, mask)
            a = torch.cat([x, mean[..., None].expand(-1, -1, t), std[..., None].expand(-1, -1, t)], dim=1)
        a = self.norm(torch.relu(self.conv1(a)), mask)
        if self.tanh:
            a = torch.tanh(a)
        att_mask = mask
        if self.training and self.frame_drop > 0:
            full = mask if mask is not None else x.new_ones(x.shape[0], t, dtype=torch.bool)
            att_mask = drop_frames(full, self.frame_drop)
        alpha = masked_softmax(self.conv2(a), att_mask)  # (B, C, T)
        mu = (alpha * x).sum(dim=-1)
        var = (alpha * x * x).sum(dim=-1) - mu * mu
        return torch.cat([mu, var.clamp(min=1e-5).sqrt()], dim=1)
