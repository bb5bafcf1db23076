"""``SpeechBackbone``: a transformers WavLM / HuBERT / wav2vec2 encoder with its own Transformer-layer loop,
so parameter-efficient methods can hook into it, and padding handled exactly.

Forward: ``wav (B, S), lengths (B,) -> BackboneOutput(hidden_states (L+1, B, T, D), mask (B, T) bool)``.
State 0 is the input of the first Transformer layer (after the positional convolution, and for post-LN
"base" models after the encoder layer norm); state ``i`` is the output of layer ``i``; for pre-LN
("stable layer norm", large) models the last state goes through the encoder's final layer norm, i.e. it
equals the transformers ``last_hidden_state``. Padded frames are zero in every state. The HF submodules
(feature encoder, feature projection, positional convolution, encoder norm, the layers themselves) are
reused as they are; module paths come from the family table (:mod:`spkpeft.backbones.families`).

Not applied (by design, for speaker tasks): the SSL pre-training SpecAugment (``mask_time_prob``) and
LayerDrop (``layerdrop``); augment the data instead.

Padding. A frame mask is derived from ``lengths`` with the model's ``_get_feat_extract_output_lengths``.
Models with ``feat_extract_norm="group"`` (base models) normalise the first CNN layer over the whole
(padded) time axis, so when lengths differ the CNN runs per utterance at its true length; equal lengths
run in one call. Attention never sees padded frames (each family's own mask convention), so a padded
batch gives every utterance the same states as running it alone.

Freezing. :func:`load_backbone` returns a backbone with every parameter frozen (methods unfreeze what
they train) and the CNN feature encoder marked frozen. While the CNN's parameters are all frozen it runs
under ``torch.no_grad()`` (:attr:`SpeechBackbone.feature_encoder_frozen`); everything after it runs with
autograd, so gradients reach parameters that methods inject into frozen layers (prompts, adapters).

Hook design (how methods change the computation). A method registers a :class:`BackboneHook` with
:meth:`SpeechBackbone.add_hook` (returns a handle with ``.remove()``). For each layer ``i`` the backbone
calls, with the running sequence ``h`` (B, N, D) and its :class:`Frames` (attention mask and number of
prefix frames):

- ``before_layer(i, h, frames) -> (h, frames)``: hooks in registration order; e.g. prepend prompts
  (use :meth:`Frames.prepend`, which extends the mask; WavLM's relative position bias is computed for the
  new length automatically).
- ``ffn(i, x, y, frames) -> y``: inside the layer, from a forward hook on the layer's feed-forward
  module (``FamilySpec.ffn``): ``x`` is the FFN input (after the pre- or post-attention norm, whichever
  the family uses), ``y`` its output; e.g. a parallel adapter returns ``y + s * Up(ReLU(Down(x)))``.
  (Active only inside :meth:`SpeechBackbone.forward`; calling ``.model`` directly runs it plain.)
- ``after_layer(i, h, frames) -> (h, frames)``: hooks in reverse order (so nested prepends unwind); e.g.
  strip this layer's prompts (:meth:`Frames.strip`).

Extra frames may only be added at the front; the returned state of each layer is the last T frames
of ``h`` after the ``after_layer`` hooks, so prompt frames never reach ``hidden_states``.
"""

from __future__ import annotations

import inspect
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle
from transformers.masking_utils import create_bidirectional_mask

from spkpeft.backbones.families import FamilySpec
from spkpeft.backbones.hf import load_hf_model

log = logging.getLogger(__name__)


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
    """Base class of method hooks: every callback defaults to the identity (see module docstring)."""

    def before_layer(self, i: int, h: torch.Tensor, frames: Frames) -> tuple[torch.Tensor, Frames]:
        return h, frames

    def ffn(self, i: int, x: torch.Tensor, y: torch.Tensor, frames: Frames) -> torch.Tensor:
        return y

    def after_layer(self, i: int, h: torch.Tensor, frames: Frames) -> tuple[torch.Tensor, Frames]:
        return h, frames


def get_module(root: nn.Module, path: str) -> nn.Module:
    """The submodule at dotted ``path`` (``encoder.layers``), with an error naming the missing part."""
    mod = root
    for part in path.split("."):
        if not hasattr(mod, part):
            raise AttributeError(f"{type(root).__name__} has no submodule {path!r} (missing {part!r})")
        mod = getattr(mod, part)
    return mod


class SpeechBackbone(nn.Module):
    """A transformers speech encoder run layer by layer (see the module docstring).

    Args:
        model: a ``WavLMModel`` / ``HubertModel`` / ``Wav2Vec2Model``.
        spec: its :class:`FamilySpec`.
        normalize_wav: per-utterance zero-mean unit-variance waveform normalisation over real samples;
            None follows fairseq (on for ``feat_extract_norm="layer"`` models, i.e. the large ones).
    """

    def __init__(self, model: nn.Module, spec: FamilySpec, normalize_wav: bool | None = None) -> None:
        super().__init__()
        self.model, self.spec = model, spec
        cfg = model.config
        self.num_layers: int = cfg.num_hidden_layers
        self.hidden_size: int = cfg.hidden_size
        self.stable_layer_norm: bool = bool(cfg.do_stable_layer_norm)
        self.group_norm_cnn: bool = cfg.feat_extract_norm == "group"
        self.normalize_wav = (cfg.feat_extract_norm == "layer") if normalize_wav is None else normalize_wav
        self.layers: nn.ModuleList = get_module(model, spec.layers)
        self.encoder = get_module(model, spec.layers.rsplit(".", 1)[0])
        self.feature_encoder = get_module(model, spec.feature_encoder)
        attn = spec.q_proj.rsplit(".", 1)[0]
        self._bias_attention = get_module(self.layers[0], attn) if spec.relative_position_bias else None
        params = inspect.signature(model._get_feat_extract_output_lengths).parameters
        self._lengths_take_adapter = "add_adapter" in params
        self._hooks: OrderedDict[int, BackboneHook] = OrderedDict()
        self._frames: Frames | None = None  # the running sequence's frames, set during forward only
        for i, layer in enumerate(self.layers):
            get_module(layer, spec.ffn).register_forward_hook(self._ffn_hook(i))

    # ----------------------------------------------------------------------------------- public API
    @property
    def device(self) -> torch.device:
        return next(self.layers.parameters()).device  # (the SSL mask vector may sit elsewhere)

    @property
    def feature_encoder_frozen(self) -> bool:
        """True when no CNN parameter requires grad: the CNN then runs under ``torch.no_grad()``."""
        return not any(p.requires_grad for p in self.feature_encoder.parameters())

    def freeze_feature_encoder(self) -> None:
        """Freeze the CNN waveform encoder (as transformers' ``freeze_feature_encoder`` does)."""
        self.feature_encoder.requires_grad_(False)
        self.feature_encoder._requires_grad = False  # transformers' flag for its gradient-checkpoint path

    @property
    def num_hooks(self) -> int:
        return len(self._hooks)

    def add_hook(self, hook: BackboneHook) -> RemovableHandle:
        """Register a method hook; ``handle.remove()`` detaches it. Hooks are not submodules."""
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = hook
        return handle

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) samples -> (B,) frames, by the model's own conv-length formula."""
        kwargs = {"add_adapter": False} if self._lengths_take_adapter else {}
        return self.model._get_feat_extract_output_lengths(lengths, **kwargs).long()

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> BackboneOutput:
        """wav (B, S) float, lengths (B,) real samples or None -> states (L+1, B, T, D), mask (B, T)."""
        lengths = self._check_input(wav, lengths)
        wav = wav[:, : int(lengths.max())]
        if self.normalize_wav:
            wav = _normalize(wav, lengths)
        feats = self._cnn(wav, lengths)  # (B, T, C)
        t = feats.shape[1]
        frame_len = self.frame_lengths(lengths)
        mask = torch.arange(t, device=wav.device).unsqueeze(0) < frame_len.unsqueeze(1)
        padded = bool((frame_len < t).any())
        proj = self.model.feature_projection(feats)
        h = proj[0] if isinstance(proj, tuple) else proj
        h = self._encoder_input(h, mask if padded else None)
        states = self._layers(h, Frames(mask if padded else None))
        if self.stable_layer_norm:
            states[-1] = self.encoder.layer_norm(states[-1])
        out = torch.stack(states)
        if padded:
            out.mul_(mask.to(out.dtype)[None, :, :, None])  # in place: stack's backward needs no output
        return BackboneOutput(out, mask)

    # ------------------------------------------------------------------------------------ internals
    def _check_input(self, wav: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if wav.dim() != 2:
            raise ValueError(f"wav must be (B, S) float, got shape {tuple(wav.shape)}")
        b, s = wav.shape
        if lengths is None:
            return torch.full((b,), s, dtype=torch.long, device=wav.device)
        lengths = lengths.to(device=wav.device, dtype=torch.long)
        if lengths.shape != (b,) or bool((lengths > s).any()) or bool((lengths < 1).any()):
            raise ValueError(
                f"lengths must be (B,)={b} values in [1, {s}] (the padded wav length), got {lengths.tolist()}"
            )
        too_short = (self.frame_lengths(lengths) < 1).nonzero().flatten().tolist()
        if too_short:
            raise ValueError(
                f"utterance(s) {too_short} too short for the CNN (lengths {lengths[too_short].tolist()} "
                f"samples give no frame)"
            )
        return lengths

    def _cnn(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, T, C); per utterance for group-norm CNNs when lengths differ."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.feature_encoder_frozen):
            if not self.group_norm_cnn or bool((lengths == lengths[0]).all()):
                return self.feature_encoder(wav).transpose(1, 2)
            t = int(self.frame_lengths(torch.tensor(wav.shape[1])).item())
            outs = []
            for row, n in zip(wav, lengths.tolist()):
                f = self.feature_encoder(row[None, :n]).transpose(1, 2)  # (1, T_b, C)
                outs.append(nn.functional.pad(f, (0, 0, 0, t - f.shape[1])))
            return torch.cat(outs)

    def _encoder_input(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Zero padded frames, add the positional convolution, (post-LN) norm, dropout: state 0."""
        if mask is not None:
            h = h * mask.to(h.dtype).unsqueeze(-1)
        h = h + self.encoder.pos_conv_embed(h)
        if not self.stable_layer_norm:
            h = self.encoder.layer_norm(h)
        return self.encoder.dropout(h)

    def _layers(self, h: torch.Tensor, frames: Frames) -> list[torch.Tensor]:
        t = h.shape[1]
        states, cache = [h], {}
        hooks = list(self._hooks.values())
        for i, layer in enumerate(self.layers):
            for hook in hooks:
                h, frames = hook.before_layer(i, h, frames)
            self._frames = frames
            try:
                out = layer(h, **self._attention_kwargs(h, frames, cache))
            finally:
                self._frames = None
            h = out[0] if isinstance(out, tuple) else out
            for hook in reversed(hooks):
                h, frames = hook.after_layer(i, h, frames)
            states.append(h[:, h.shape[1] - t :])
        return states

    def _attention_kwargs(self, h: torch.Tensor, frames: Frames, cache: dict) -> dict[str, Any]:
        """The family's attention inputs for the current sequence, computed once per (length, mask)."""
        entries = cache.setdefault(h.shape[1], [])
        for mask, kwargs in entries:
            if mask is frames.mask:
                return kwargs
        build = self._wavlm_kwargs if self._bias_attention is not None else self._sdpa_kwargs
        kwargs = build(h, frames.mask)
        entries.append((frames.mask, kwargs))
        return kwargs

    def _wavlm_kwargs(self, h: torch.Tensor, mask: torch.Tensor | None) -> dict[str, Any]:
        """WavLM: a (B, N) padding mask, and the relative position bias (B*H, N, N) of layer 0."""
        b, n = h.shape[:2]
        attn = self._bias_attention
        bias = attn.compute_bias(n, n)  # (H, N, N)
        bias = bias.unsqueeze(0).expand(b, -1, -1, -1).reshape(b * attn.num_heads, n, n)
        return {"attention_mask": mask, "position_bias": bias}

    def _sdpa_kwargs(self, h: torch.Tensor, mask: torch.Tensor | None) -> dict[str, Any]:
        """HuBERT / wav2vec2: the 4-D mask transformers builds for the configured attention kernel."""
        return {"attention_mask": create_bidirectional_mask(self.model.config, h, mask)}

    def _ffn_hook(self, i: int):
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
            if self._frames is None or not self._hooks:
                return None
            y = output
            for h in self._hooks.values():
                y = h.ffn(i, args[0], y, self._frames)
            return y

        return hook


def _normalize(wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per utterance over its real samples; padding stays zero. (B, S) -> (B, S)."""
    real = (torch.arange(wav.shape[1], device=wav.device)[None] < lengths[:, None]).to(wav.dtype)
    n = lengths.to(wav.dtype)[:, None]
    mean = (wav * real).sum(1, keepdim=True) / n
    var = (((wav - mean) * real) ** 2).sum(1, keepdim=True) / n
    return (wav - mean) / torch.sqrt(var + 1e-7) * real


def load_backbone(
    name_or_path: str | Path,
    device: str | torch.device | None = None,
    normalize_wav: bool | None = None,
    **config_overrides: Any,
) -> SpeechBackbone:
    """A frozen :class:`SpeechBackbone` from a preset, a local ``save_pretrained`` directory or a hub id.

    ``device="meta"`` builds a preset with no memory (parameter counting). ``config_overrides`` go to
    the transformers config (e.g. ``do_stable_layer_norm=True``).
    """
    model, spec = load_hf_model(name_or_path, device=device, **config_overrides)
    model.requires_grad_(False)
    backbone = SpeechBackbone(model, spec, normalize_wav=normalize_wav)
    backbone.freeze_feature_encoder()
    return backbone
