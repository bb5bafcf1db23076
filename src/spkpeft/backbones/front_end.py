"""The base class of front ends (waveforms -> frames); the kinds and their registry are in
:mod:`spkpeft.backbones.front_ends`, whose docstring states the contract."""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from torch import nn


class FrontEnd(nn.Module):
    """Base class of front ends (see the module docstring)."""

    default_normalize_wav: bool = False  # whether a per-utterance waveform normalisation is the default
    max_frames: int | None = None

    @property
    def feature_encoder(self) -> nn.Module:
        raise NotImplementedError

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def traceable(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self(wav, lengths)

    @property
    def frozen(self) -> bool:
        """True when no ``feature_encoder`` parameter requires grad."""
        return not any(p.requires_grad for p in self.feature_encoder.parameters())

    def grad_mode(self) -> AbstractContextManager:
        """``torch.no_grad()`` while the feature encoder is frozen, else the current grad mode."""
        return torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen)
