"""Masking helpers that keep padded frames from influencing real ones.

Convention for every back-end: a (B, C, T) tensor between blocks holds zeros on padded frames, so a
convolution with kernel > 1 sees the same zeros beyond an utterance's end as it would see from its own
zero padding when the utterance is alone in a batch. Statistics (means, standard deviations, batch-norm
statistics, attention softmaxes) are taken over real frames only.
"""

from __future__ import annotations

import torch
from torch import nn


def zero_padded(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Zero the padded frames.

    Args:
        x: (B, C, T) or (B, C, T, L).
        mask: (B, T) bool, True on real frames, or None (nothing padded).
    """
    if mask is None:
        return x
    m = mask[:, None, :] if x.dim() == 3 else mask[:, None, :, None]
    return x * m.to(x.dtype)


def masked_mean_std(
    x: torch.Tensor, mask: torch.Tensor | None, eps: float = 1e-7
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (population) standard deviation over the real frames.

    Args:
        x: (B, C, T).
        mask: (B, T) bool or None.

    Returns:
        mean (B, C), std (B, C); std = sqrt(max(var, eps)).
    """
    if mask is None:
        mean = x.mean(dim=-1)
        var = x.var(dim=-1, unbiased=False)
    else:
        w = mask[:, None, :].to(x.dtype)
        n = w.sum(dim=-1)
        mean = (x * w).sum(dim=-1) / n
        var = (((x - mean[..., None]) ** 2) * w).sum(dim=-1) / n
    return mean, var.clamp(min=eps).sqrt()


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last (time) axis restricted to real frames.

    Args:
        scores: (B, C, T).
        mask: (B, T) bool or None; every row needs at least one True.
    """
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, :], torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1)


def drop_frames(mask: torch.Tensor, p: float) -> torch.Tensor:
    """Training-time frame masking: drop each real frame with probability ``p``, keeping at least one.

    Args:
        mask: (B, T) bool.

    Returns:
        (B, T) bool; a row that would lose every frame keeps its original mask.
    """
    if p <= 0:
        return mask
    kept = mask & (torch.rand(mask.shape, device=mask.device) >= p)
    empty = ~kept.any(dim=1, keepdim=True)
    return torch.where(empty, mask, kept)


class MaskedBatchNorm(nn.BatchNorm1d):
    """Batch norm over channel dim 1 whose training statistics come from real frames only.

    Accepts (B, C), (B, C, T) or (B, C, T, L) with a (B, T) mask. In training the normalised statistics
    and the running averages use real frames only; in eval the running statistics are applied. Padded
    frames of the output are zero (the masking convention).
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:  # we always hand (N, C) to the parent
        if input.dim() != 2:
            raise ValueError(f"MaskedBatchNorm: internal input must be (N, C), got {tuple(input.shape)}")

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        """x: (B, C[, T[, L]]), mask: (B, T) bool or None -> same shape as x."""
        if x.dim() == 2:
            return super().forward(x)
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"MaskedBatchNorm: expected {self.num_features} channels in dim 1, got shape {tuple(x.shape)}"
            )
        last = x.dim() - 1  # positive dims: ONNX export (TorchScript) mistranslates movedim(-1, ...)
        flat = x.movedim(1, last)  # (B, T[, L], C)
        shape = flat.shape
        flat = flat.reshape(-1, self.num_features)
        if mask is None:
            return super().forward(flat).reshape(shape).movedim(last, 1)
        m = mask if x.dim() == 3 else mask[:, :, None].expand(shape[:-1])
        m = m.reshape(-1)
        if self.training:
            out = flat.new_zeros(flat.shape)
            out[m] = super().forward(flat[m])
        else:
            out = super().forward(flat) * m[:, None].to(flat.dtype)
        return out.reshape(shape).movedim(last, 1)
