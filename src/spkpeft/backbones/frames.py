"""What the layer loop hands out and what it hands to method hooks: :class:`BackboneOutput`,
:class:`Frames` (the running sequence's mask and prefix count) and the :class:`BackboneHook` base class.

Shapes: B batch, N running sequence length (prompt frames + T speech frames), D hidden size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class BackboneOutput:
    """``hidden_states`` (L+1, B, T, D) and ``mask`` (B, T) bool, True on real frames."""

    hidden_states: torch.Tensor
    mask: torch.Tensor


@dataclass(frozen=True)
class Frames:
    """What hooks know about the running sequence (B, N, D).

    ``mask``: (B, N) bool, True where attention may look (prompts and real frames), or None when the
    batch has no padding. ``num_prefix``: frames at the front that are not speech (prompts).
    """

    mask: torch.Tensor | None
    num_prefix: int = 0

    def speech_mask(self, h: torch.Tensor) -> torch.Tensor:
        """(B, N) bool: True on real speech frames of ``h`` (not prefix, not padding)."""
        b, n = h.shape[:2]
        m = torch.ones(b, n, dtype=torch.bool, device=h.device) if self.mask is None else self.mask.clone()
        m[:, : self.num_prefix] = False
        return m

    def prepend(self, h: torch.Tensor, prefix: torch.Tensor) -> tuple[torch.Tensor, Frames]:
        """Prepend ``prefix`` (B, P, D) to ``h`` (B, N, D) -> (B, P + N, D) and the extended frames."""
        out = torch.cat([prefix.to(h.dtype), h], dim=1)
        mask = self.mask
        if mask is not None:
            ones = torch.ones(mask.shape[0], prefix.shape[1], dtype=mask.dtype, device=mask.device)
            mask = torch.cat([ones, mask], dim=1)
        return out, Frames(mask, self.num_prefix + prefix.shape[1])

    def strip(self, h: torch.Tensor, count: int) -> tuple[torch.Tensor, Frames]:
        """Drop the first ``count`` prefix frames of ``h`` (B, N, D) -> (B, N - count, D)."""
        if count > self.num_prefix:
            raise ValueError(f"cannot strip {count} prefix frames: only {self.num_prefix} are there")
        mask = None if self.mask is None else self.mask[:, count:]
        return h[:, count:], Frames(mask, self.num_prefix - count)


class BackboneHook:
    """Base class of method hooks: every callback defaults to the identity (see
    :mod:`spkpeft.backbones.backbone` for when each is called)."""

    def before_layer(self, i: int, h: torch.Tensor, frames: Frames) -> tuple[torch.Tensor, Frames]:
        return h, frames

    def ffn(self, i: int, x: torch.Tensor, y: torch.Tensor, frames: Frames) -> torch.Tensor:
        return y

    def after_layer(self, i: int, h: torch.Tensor, frames: Frames) -> tuple[torch.Tensor, Frames]:
        return h, frames
