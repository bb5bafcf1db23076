"""Learned prompt vectors, shared by Deep Speaker Prompting (WavLM/HuBERT/wav2vec2) and Whisper prompt
tuning: a bank of ``(depth, P, D)`` vectors, prepended to a layer's input and stripped after it.

Padding stays at the end of each sequence (right-padded batches), so prompts at the front never change
the relative position of real frames, and the extended mask keeps padded frames out of attention.
"""

from __future__ import annotations

import torch
from torch import nn


class PromptBank(nn.Module):
    """``depth`` sets of ``length`` prompt vectors of width ``dim``, Xavier-uniform initialised.

    Args:
        depth: number of layers that receive prompts (1 for shallow prompting).
        length: P, prompts per layer.
        dim: D, the hidden size.
    """

    def __init__(self, depth: int, length: int, dim: int) -> None:
        super().__init__()
        self.depth, self.length, self.dim = depth, length, dim
        self.prompts = nn.Parameter(torch.empty(depth, length, dim))
        for i in range(depth):
            nn.init.xavier_uniform_(self.prompts.data[i])

    def prepend(
        self,
        layer: int,
        h: torch.Tensor,
        mask: torch.Tensor | None,
        scale: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Prepend layer ``layer``'s prompts.

        Args:
            h: (B, T, D) layer input.
            mask: (B, T) bool, True on real frames, or None (no padding).
            scale: optional (B,) per-utterance factor on the prompt vectors (UniPET's prompt gate).
        Returns:
            (B, P + T, D) and the (B, P + T) mask (None stays None).
        """
        b = h.shape[0]
        p = self.prompts[layer].to(h.dtype).unsqueeze(0).expand(b, -1, -1)
        if scale is not None:
            p = p * scale.to(h.dtype).view(b, 1, 1)
        out = torch.cat([p, h], dim=1)
        if mask is None:
            return out, None
        ones = torch.ones(b, self.length, dtype=mask.dtype, device=mask.device)
        return out, torch.cat([ones, mask], dim=1)

    def strip(self, h: torch.Tensor) -> torch.Tensor:
        """(B, P + T, D) -> (B, T, D): drop the prompt outputs."""
        return h[:, self.length :]
