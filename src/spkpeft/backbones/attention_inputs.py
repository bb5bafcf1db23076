"""Attention inputs: the keyword arguments a family's Transformer layer takes beside ``h``, for the
current running sequence (B, N, D) and its padding mask (B, N) bool (or None when nothing is padded).

Built by ``ATTENTION_INPUTS.build(spec.attention, model, spec, layers)``; called as
``inputs(h, mask) -> dict``. :class:`~spkpeft.backbones.backbone.SpeechBackbone` calls it once per
(sequence length, mask) in a forward and passes the same dict to every layer that sees that sequence.

- ``mask`` (HuBERT, wav2vec2, Whisper): the 4-D mask transformers builds for the configured attention
  kernel (``create_bidirectional_mask``): padded keys are never attended to. Whisper's stock encoder
  takes no mask (it always runs 30 s windows); its attention applies this one as any other.
- ``relative_bias`` (WavLM): the (B, N) padding mask and the gated relative position bias
  (B*H, N, N) that layer 0 computes for length N and every layer reuses.
- ``conformer`` (w2v-BERT 2.0): the 4-D mask, the encoder's relative position embeddings for length N
  (None for ``position_embeddings_type="relative_key"``, whose distance table is inside each attention)
  and the (B, N) mask with which each layer's depthwise convolution zeroes padded frames.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from transformers.masking_utils import create_bidirectional_mask

from spkpeft.backbones.families import FamilySpec, get_module
from spkpeft.registry import Registry

AttentionInputs = Callable[[torch.Tensor, "torch.Tensor | None"], dict[str, Any]]

ATTENTION_INPUTS: Registry[AttentionInputs] = Registry("attention input scheme")


@ATTENTION_INPUTS.register("mask")
def build_mask_inputs(model: nn.Module, spec: FamilySpec, layers: nn.ModuleList) -> AttentionInputs:
    """transformers' 4-D bidirectional padding mask for the configured attention kernel."""

    def inputs(h: torch.Tensor, mask: torch.Tensor | None) -> dict[str, Any]:
        return {"attention_mask": create_bidirectional_mask(model.config, h, mask)}

    return inputs


@ATTENTION_INPUTS.register("relative_bias")
def build_relative_bias_inputs(model: nn.Module, spec: FamilySpec, layers: nn.ModuleList) -> AttentionInputs:
    """WavLM: (B, N) padding mask + layer 0's relative position bias (B*H, N, N)."""
    attn = get_module(layers[0], spec.q_proj.rsplit(".", 1)[0])

    def inputs(h: torch.Tensor, mask: torch.Tensor | None) -> dict[str, Any]:
        b, n = h.shape[:2]
        bias = attn.compute_bias(n, n)  # (H, N, N)
        bias = bias.unsqueeze(0).expand(b, -1, -1, -1).reshape(b * attn.num_heads, n, n)
        return {"attention_mask": mask, "position_bias": bias}

    return inputs


@ATTENTION_INPUTS.register("conformer")
def build_conformer_inputs(model: nn.Module, spec: FamilySpec, layers: nn.ModuleList) -> AttentionInputs:
    """w2v-BERT 2.0 (``Wav2Vec2BertEncoder``): 4-D mask, relative position embeddings, convolution mask."""
    embed_positions = get_module(model, spec.layers.rpartition(".")[0]).embed_positions  # or None

    def inputs(h: torch.Tensor, mask: torch.Tensor | None) -> dict[str, Any]:
        return {
            "attention_mask": create_bidirectional_mask(model.config, h, mask),
            "relative_position_embeddings": embed_positions(h) if embed_positions is not None else None,
            "conv_attention_mask": mask,
        }

    return inputs
