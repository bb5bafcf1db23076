"""Make every attention layer compute q/k/v by *calling* its projection modules.

HuBERT and wav2vec2 attention call ``self.q_proj(x)``, so replacing ``q_proj`` by a LoRA or SpectralFT
layer changes the computation. transformers' WavLM attention does not: it hands ``self.q_proj.weight``
to ``F.multi_head_attention_forward``, so a peft ``lora.Linear`` in its place (whose ``weight`` is the
frozen base weight) would be silently ignored. :func:`route_projections_through_modules` swaps each
WavLM attention to a subclass whose self-attention calls ``q_proj``/``k_proj``/``v_proj``/``out_proj``
and is otherwise the same computation (same scaling, same gated relative position bias, same masking,
same dropout), so the frozen model's output is unchanged. :func:`restore_attention_classes` undoes it,
e.g. on a merged copy before ``save_pretrained``.

:class:`SdpaWavLMAttention` is the same attention through ``F.scaled_dot_product_attention``: the gated
relative position bias, with -inf on padded keys, is its additive mask (the memory-efficient kernel
takes one; flash attention does not), so no (B, H, T, T) softmax is written by hand. transformers has no
SDPA path for WavLM (``_supports_sdpa = False``); :func:`set_attention_implementation` installs this one
for WavLM and transformers' own for the other families. It returns no attention weights (the encoder
layers discard them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.wavlm.modeling_wavlm import WavLMAttention


class ModuleCallingWavLMAttention(WavLMAttention):
    """WavLM attention that runs its projections as modules (so wrapped projections take effect)."""

    def torch_multi_head_self_attention(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        gated_position_bias: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Self-attention with module projections.

        Args:
            hidden_states: (B, T, D).
            attention_mask: (B, T), 1/True on real frames, or None.
            gated_position_bias: (B * H, T, T) additive attention bias.
        Returns:
            (B, T, D) output and (B, H, T, T) head-averaged attention weights (as transformers returns).
        """
        b, t, d = hidden_states.shape
        h, hd = self.num_heads, self.head_dim

        def heads(x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, H, T, hd)
            return x.view(b, t, h, hd).transpose(1, 2)

        q = heads(self.q_proj(hidden_states)) * hd**-0.5
        k = heads(self.k_proj(hidden_states))
        v = heads(self.v_proj(hidden_states))
        bias = gated_position_bias.view(b, h, t, t)
        if attention_mask is not None:
            pad = attention_mask.ne(1)[:, None, None, :]  # (B, 1, 1, T) True on padded keys
            bias = bias.masked_fill(pad, float("-inf"))
        weights = torch.softmax(bias + q @ k.transpose(-1, -2), dim=-1)
        weights = F.dropout(weights, p=self.dropout, training=self.training)
        out = (weights @ v).transpose(1, 2).reshape(b, t, d)
        avg = weights.mean(dim=1)  # (B, T, T), like torch's need_weights=True default
        return self.out_proj(out), avg[:, None].broadcast_to(b, h, t, t)


class SdpaWavLMAttention(ModuleCallingWavLMAttention):
    """WavLM attention with module projections through ``F.scaled_dot_product_attention``."""

    def torch_multi_head_self_attention(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        gated_position_bias: torch.Tensor,
    ) -> tuple[torch.Tensor, None]:
        """hidden_states (B, T, D), attention_mask (B, T) 1 on real frames or None, gated_position_bias
        (B * H, T, T) -> ((B, T, D), None)."""
        b, t, d = hidden_states.shape
        h, hd = self.num_heads, self.head_dim

        def heads(x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, H, T, hd)
            return x.view(b, t, h, hd).transpose(1, 2)

        q = heads(self.q_proj(hidden_states))
        k = heads(self.k_proj(hidden_states))
        v = heads(self.v_proj(hidden_states))
        bias = gated_position_bias.view(b, h, t, t)
        if attention_mask is not None:
            bias = bias.masked_fill(attention_mask.ne(1)[:, None, None, :], float("-inf"))
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias.to(q.dtype), dropout_p=self.dropout if self.training else 0.0
        )
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d)), None


ATTENTION_IMPLEMENTATIONS = ("sdpa", "eager")


def set_attention_implementation(model: nn.Module, implementation: str) -> None:
    """Run every attention of ``model`` with ``implementation`` (``sdpa`` or ``eager``).

    WavLM: ``sdpa`` swaps its attentions to :class:`SdpaWavLMAttention`, ``eager`` back to the
    (module-calling, if they were) eager classes. Other families: transformers'
    ``set_attn_implementation``.
    """
    if implementation not in ATTENTION_IMPLEMENTATIONS:
        raise ValueError(
            f"attention implementation {implementation!r}; valid: {', '.join(ATTENTION_IMPLEMENTATIONS)}"
        )
    if any(isinstance(m, WavLMAttention) for m in model.modules()):
        if implementation == "sdpa":
            _swap_class(model, WavLMAttention, SdpaWavLMAttention)
            _swap_class(model, ModuleCallingWavLMAttention, SdpaWavLMAttention)
        else:
            _swap_class(model, SdpaWavLMAttention, ModuleCallingWavLMAttention)
        return
    if getattr(model.config, "_attn_implementation", None) != implementation:
        model.set_attn_implementation(implementation)


def route_projections_through_modules(model: nn.Module) -> int:
    """Swap every WavLM attention in ``model`` to :class:`ModuleCallingWavLMAttention`; returns how many.

    Other families already call their projection modules and are left alone (returns 0), and so are
    :class:`SdpaWavLMAttention` (it calls them too). Idempotent.
    """
    return _swap_class(model, WavLMAttention, ModuleCallingWavLMAttention)


def restore_attention_classes(model: nn.Module) -> int:
    """Undo :func:`route_projections_through_modules` (the plain transformers classes); returns how many.

    Attentions on the SDPA kernel stay on it (same outputs; ``save_pretrained`` writes the same files).
    """
    return _swap_class(model, ModuleCallingWavLMAttention, WavLMAttention)


def _swap_class(model: nn.Module, old: type, new: type) -> int:
    """Give every submodule of exactly class ``old`` the class ``new`` (same layout); returns how many."""
    n = 0
    for module in model.modules():
        if type(module) is old:
            module.__class__ = new
            n += 1
    return n
