"""Trainable conditioning of a frozen Whisper for target-speaker ASR (Ma et al., arXiv 2312.08079).

- Encoder prompts ``(depth_enc, P, D)`` and decoder prompts ``(depth_dec, P, D)``, each a
  :class:`~spkpeft.methods.prompt_bank.PromptBank` (Xavier init). Depth 1 = shallow (first block only),
  depth = number of blocks = deep (every block).
- The target speaker's embedding ``(B, E)`` -> ``Linear(E, D)`` fills one encoder slot before the prompts.
- Optional reparameterisation: a separate residual MLP per layer and side,
  ``x + LN(Linear(D/2 -> D)(ReLU(Linear(D -> D/2)(x))))``; :meth:`TSPrompts.fold` replaces each prompt by
  its MLP output and drops the MLPs, so inference carries plain prompts and gives identical outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spkpeft.methods.prompt_bank import PromptBank


@dataclass
class PromptConfig:
    """Prompt-tuning fields (paper defaults: P 16, deep on both sides).

    ``encoder_depth`` / ``decoder_depth``: blocks that receive fresh prompts, counted from the first;
    ``null`` = every block (deep), 1 = shallow.
    """

    length: int = 16
    encoder_depth: int | None = None
    decoder_depth: int | None = None
    reparam: bool = False
    speaker_slot: bool = True


class ReparamMLP(nn.Module):
    """``x + LN(up(ReLU(down(x))))`` applied to each prompt vector; (P, D) -> (P, D)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.down = nn.Linear(dim, dim // 2)
        self.up = nn.Linear(dim // 2, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm(self.up(torch.relu(self.down(x))))


def _depth(requested: int | None, layers: int, side: str) -> int:
    if requested is None:
        return layers
    if not 1 <= requested <= layers:
        raise ValueError(f"prompts.{side}_depth={requested} must be between 1 and the {layers} {side} blocks")
    return requested


class TSPrompts(nn.Module):
    """All trainable parameters of prompt tuning for one Whisper.

    Args:
        cfg: :class:`PromptConfig`.
        dim: D, Whisper's ``d_model``.
        encoder_layers / decoder_layers: block counts of the frozen model.
        speaker_dim: E, the speaker embedding size (ignored when ``cfg.speaker_slot`` is false).
    """

    def __init__(
        self, cfg: PromptConfig, dim: int, encoder_layers: int, decoder_layers: int, speaker_dim: int
    ) -> None:
        super().__init__()
        if cfg.length < 1:
            raise ValueError(f"prompts.length={cfg.length} must be >= 1")
        self.cfg, self.dim = cfg, dim
        self.encoder = PromptBank(_depth(cfg.encoder_depth, encoder_layers, "encoder"), cfg.length, dim)
        self.decoder = PromptBank(_depth(cfg.decoder_depth, decoder_layers, "decoder"), cfg.length, dim)
        self.speaker_proj = nn.Linear(speaker_dim, dim) if cfg.speaker_slot else None
        self.encoder_mlps = self.decoder_mlps = None
        if cfg.reparam:
            self.encoder_mlps = nn.ModuleList(ReparamMLP(dim) for _ in range(self.encoder.depth))
            self.decoder_mlps = nn.ModuleList(ReparamMLP(dim) for _ in range(self.decoder.depth))

    @property
    def encoder_slots(self) -> int:
        """Encoder positions reserved in front of the audio frames: speaker slot + P prompts."""
        return self.cfg.length + (1 if self.speaker_proj is not None else 0)

    @property
    def folded(self) -> bool:
        return self.encoder_mlps is None

    def encoder_prompts(self, layer: int) -> torch.Tensor | None:
        """(P, D) prompts for encoder block ``layer``, or None past the prompt depth."""
        return self._prompts(self.encoder, self.encoder_mlps, layer)

    def decoder_prompts(self, layer: int) -> torch.Tensor | None:
        """(P, D) prompts for decoder block ``layer``, or None past the prompt depth."""
        return self._prompts(self.decoder, self.decoder_mlps, layer)

    def speaker(self, emb: torch.Tensor) -> torch.Tensor:
        """(B, E) speaker embeddings -> (B, D) speaker slot vectors."""
        if self.speaker_proj is None:
            raise ValueError("prompts.speaker_slot is false: this model takes no speaker embedding")
        if emb.ndim != 2 or emb.shape[1] != self.speaker_proj.in_features:
            raise ValueError(
                f"speaker embeddings must be (B, {self.speaker_proj.in_features}), got {tuple(emb.shape)}"
            )
        return self.speaker_proj(emb.to(self.speaker_proj.weight.dtype))

    @staticmethod
    def _prompts(bank: PromptBank, mlps: nn.ModuleList | None, layer: int) -> torch.Tensor | None:
        if layer >= bank.depth:
            return None
        x = bank.prompts[layer]
        return x if mlps is None else mlps[layer](x)

    @torch.no_grad()
    def fold(self) -> None:
        """Replace every prompt by its reparameterised value and drop the MLPs (a no-op when folded)."""
        if self.folded:
            return
        for bank, mlps in ((self.encoder, self.encoder_mlps), (self.decoder, self.decoder_mlps)):
            for i in range(bank.depth):
                bank.prompts.data[i] = mlps[i](bank.prompts.data[i])
        self.encoder_mlps = self.decoder_mlps = None
