"""Positional schemes: front-end frames (B, T, D) -> state 0, the input of the first Transformer layer.

Built by ``POSITIONS.build(spec.positions, model, spec)``; a scheme is called as
``positions(h (B, T, D), mask (B, T) bool | None) -> (B, T, D)`` and has ``max_frames`` (None: any T).

- ``conv`` (WavLM, HuBERT, wav2vec2): padded frames zeroed, the positional convolution added
  (``FamilySpec.position_module``), then the encoder norm for post-LN models, then the encoder's dropout.
- ``sinusoidal`` (Whisper): the first T rows of the fixed position table added, then dropout. Whisper
  was trained on 30 s windows; shorter inputs use the table's first rows (what a clip padded to 30 s
  sees too), and inputs longer than the table are refused (:class:`SpeechBackbone` says so before
  computing anything): crop or chunk them (``spkpeft eval`` embeds in 20 s chunks by default).
- ``none`` (w2v-BERT 2.0): no absolute positions (they are relative, inside each layer's attention):
  padded frames zeroed, then the encoder's dropout (``FamilySpec.position_module``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from spkpeft.backbones.families import FamilySpec, get_module
from spkpeft.registry import Registry

Positions = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]

POSITIONS: Registry[Positions] = Registry("positional scheme")


class ConvPositions:
    """wav2vec2-line positions: ``dropout(norm?(h + pos_conv(h)))`` on zero-padded frames."""

    max_frames = None

    def __init__(self, model: nn.Module, spec: FamilySpec) -> None:
        self.pos_conv = get_module(model, spec.position_module)
        self.encoder = get_module(model, spec.position_module.rpartition(".")[0])  # holds the dropout
        post_ln = spec.norm and not spec.is_pre_ln(model.config)
        self.norm = get_module(model, spec.norm) if post_ln else None

    def __call__(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is not None:
            h = h * mask.to(h.dtype).unsqueeze(-1)
        h = h + self.pos_conv(h)
        if self.norm is not None:
            h = self.norm(h)
        return self.encoder.dropout(h)


class TablePositions:
    """Whisper positions: ``dropout(h + table[:T])`` (the table is fixed: sinusoids)."""

    def __init__(self, model: nn.Module, spec: FamilySpec) -> None:
        self.table = get_module(model, spec.position_module)  # nn.Embedding (max_frames, D)
        self.model = model
        self.max_frames = int(self.table.num_embeddings)

    def __call__(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        t = h.shape[1]
        if t > self.max_frames:
            raise ValueError(f"{t} frames exceed the {self.max_frames}-row position table")
        h = h + self.table.weight[:t]
        return nn.functional.dropout(h, p=float(self.model.config.dropout), training=self.model.training)


@POSITIONS.register("conv")
def build_conv_positions(model: nn.Module, spec: FamilySpec) -> Positions:
    """Positional convolution (+ encoder norm in post-LN models), wav2vec2 line."""
    return ConvPositions(model, spec)


@POSITIONS.register("sinusoidal")
def build_table_positions(model: nn.Module, spec: FamilySpec) -> Positions:
    """A slice of a fixed position table (Whisper's sinusoids)."""
    return TablePositions(model, spec)


class NoPositions:
    """Relative-position families: ``dropout(h)`` on zero-padded frames (as ``Wav2Vec2BertEncoder``)."""

    max_frames = None

    def __init__(self, model: nn.Module, spec: FamilySpec) -> None:
        self.dropout = get_module(model, spec.position_module)

    def __call__(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is not None:
            h = h * mask.to(h.dtype).unsqueeze(-1)
        return self.dropout(h)


@POSITIONS.register("none")
def build_no_positions(model: nn.Module, spec: FamilySpec) -> Positions:
    """No absolute positions: zero padded frames, then the encoder's dropout (w2v-BERT 2.0)."""
    return NoPositions(model, spec)
