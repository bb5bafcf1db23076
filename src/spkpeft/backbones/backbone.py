"""``SpeechBackbone``: a transformers speech encoder (WavLM, HuBERT, wav2vec2, Whisper, ...) run by one
Transformer-layer loop for every family, so parameter-efficient methods can hook into it, with padding
handled exactly.

Forward: ``wav (B, S), lengths (B,) -> BackboneOutput(hidden_states (L+1, B, T, D), mask (B, T) bool)``.
State 0 is the input of the first Transformer layer (front end, then positions; for post-LN models
after the encoder layer norm); state ``i`` is the output of layer ``i``; for pre-LN models (the "stable
layer norm" large wav2vec2-line models, Whisper) the last state goes through the encoder's final layer
norm, i.e. it equals the transformers ``last_hidden_state``. Padded frames are zero in every state.

What differs between families is declared in the family table (:mod:`spkpeft.backbones.families`) and
built from three registries: the front end (:mod:`~spkpeft.backbones.front_ends`: waveform -> frames,
frame lengths), the positional scheme (:mod:`~spkpeft.backbones.positions`: frames -> state 0) and the
attention inputs (:mod:`~spkpeft.backbones.attention_inputs`: padding mask, position bias). The
transformers submodules (front-end modules, norms, the layers themselves) are reused as they are.

Not applied (by design, for speaker tasks): the SSL pre-training SpecAugment (``mask_time_prob``) and
LayerDrop (``layerdrop``); augment the data instead.

Padding. A frame mask is derived from ``lengths`` with the front end's length formula. Each front end
gives a padded row the frames of the row run alone, and attention never sees padded frames, so a padded
batch gives every utterance the same states as running it alone.

Freezing. :func:`load_backbone` returns a backbone with every parameter frozen (methods unfreeze what
they train) and the front end's feature encoder (CNN, Whisper's convolutions) marked frozen. While its
parameters are all frozen it runs under ``torch.no_grad()`` (:attr:`SpeechBackbone.feature_encoder_frozen`;
Whisper's log-mel always does); everything after it runs with autograd, so gradients reach parameters
that methods inject into frozen layers (prompts, adapters).

Hook design (how methods change the computation). A method registers a :class:`BackboneHook` with
:meth:`SpeechBackbone.add_hook` (returns a handle with ``.remove()``). For each layer ``i`` the backbone
calls, with the running sequence ``h`` (B, N, D) and its :class:`Frames` (attention mask and number of
prefix frames):

- ``before_layer(i, h, frames) -> (h, frames)``: hooks in registration order; e.g. prepend prompts
  (use :meth:`Frames.prepend`, which extends the mask; the attention inputs, WavLM's relative position
  bias included, are built for the new length automatically).
- ``ffn(i, x, y, frames) -> y``: inside the layer: ``x`` is the feed-forward block's input (the input of
  ``FamilySpec.ffn_in``, after the pre- or post-attention norm, whichever the family uses), ``y`` its
  output (the output of ``FamilySpec.ffn_out``); e.g. a parallel adapter returns
  ``y + s * Up(ReLU(Down(x)))``. (Active only inside :meth:`SpeechBackbone.forward`; calling ``.model``
  directly runs it plain.)
- ``after_layer(i, h, frames) -> (h, frames)``: hooks in reverse order (so nested prepends unwind); e.g.
  strip this layer's prompts (:meth:`Frames.strip`).

Extra frames may only be added at the front; the returned state of each layer is the last T frames
of ``h`` after the ``after_layer`` hooks, so prompt frames never reach ``hidden_states``.

Activation checkpointing. With :attr:`SpeechBackbone.checkpoint_layers` set, each Transformer layer runs
under ``torch.utils.checkpoint`` (non-reentrant) while autograd records: only the layer's input is kept
for the backward, which runs the layer again (``ffn`` hooks included, with the same dropout draws). The
gradients are those of the plain forward; memory falls from every activation of every layer to one
layer's, for about one more forward of the layers.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch.utils.hooks import RemovableHandle

from spkpeft.backbones.attention_inputs import ATTENTION_INPUTS
from spkpeft.backbones.families import FamilySpec, get_module
from spkpeft.backbones.frames import BackboneHook, BackboneOutput, Frames
from spkpeft.backbones.front_ends import FRONT_ENDS
from spkpeft.backbones.hf import load_hf_model
from spkpeft.backbones.positions import POSITIONS
from spkpeft.backbones.projections import set_attention_implementation

__all__ = ["BackboneHook", "BackboneOutput", "Frames", "SpeechBackbone", "get_module", "load_backbone"]

log = logging.getLogger(__name__)


class SpeechBackbone(nn.Module):
    """A transformers speech encoder run layer by layer (see the module docstring).

    Args:
        model: the bare transformers encoder of a family in the family table (``WavLMModel``,
            ``HubertModel``, ``Wav2Vec2Model``, ``WhisperEncoder``).
        spec: its :class:`FamilySpec`.
        normalize_wav: per-utterance zero-mean unit-variance waveform normalisation over real samples;
            None follows the front end (fairseq: on for ``feat_extract_norm="layer"`` wav2vec2-line
            models, i.e. the large ones; off for Whisper, whose log-mel is level-normalised).
    """

    def __init__(self, model: nn.Module, spec: FamilySpec, normalize_wav: bool | None = None) -> None:
        super().__init__()
        self.model, self.spec = model, spec
        cfg = model.config
        self.num_layers: int = cfg.num_hidden_layers
        self.hidden_size: int = cfg.hidden_size
        self.stable_layer_norm: bool = spec.is_pre_ln(cfg)  # pre-LN: final norm on the last state
        self.layers: nn.ModuleList = get_module(model, spec.layers)
        self.norm = get_module(model, spec.norm) if spec.norm else None
        self.front_end = FRONT_ENDS.build(spec.front_end, model, spec)
        self.positions = POSITIONS.build(spec.positions, model, spec)
        self.attention_inputs = ATTENTION_INPUTS.build(spec.attention, model, spec, self.layers)
        default = self.front_end.default_normalize_wav
        self.normalize_wav = default if normalize_wav is None else normalize_wav
        self._hooks: OrderedDict[int, BackboneHook] = OrderedDict()
        self._frames: Frames | None = None  # the running sequence's frames, set during forward only
        self._ffn_x: torch.Tensor | None = None  # the current layer's FFN input, between the two hooks
        self.checkpoint_layers = False  # activation checkpointing of each layer (module docstring)
        self.length_bucket = 0  # samples; > 0 rounds the trimmed batch length up to a multiple (compile)
        for i, layer in enumerate(self.layers):
            get_module(layer, spec.ffn_in).register_forward_pre_hook(self._ffn_in_hook)
            get_module(layer, spec.ffn_out).register_forward_hook(self._ffn_out_hook(i))

    # ----------------------------------------------------------------------------------- public API
    @property
    def device(self) -> torch.device:
        return next(self.layers.parameters()).device  # (the SSL mask vector may sit elsewhere)

    @property
    def feature_encoder(self) -> nn.Module:
        """The front end's frozen-by-default part: the CNN, or Whisper's two convolutions."""
        return self.front_end.feature_encoder

    @property
    def feature_encoder_frozen(self) -> bool:
        """True when no feature-encoder parameter requires grad: it then runs under ``torch.no_grad()``."""
        return self.front_end.frozen

    def freeze_feature_encoder(self) -> None:
        """Freeze the feature encoder (as transformers' ``freeze_feature_encoder`` does)."""
        self.set_feature_encoder_trainable(False)

    def set_feature_encoder_trainable(self, trainable: bool) -> None:
        """(Un)freeze the feature encoder's parameters."""
        self.feature_encoder.requires_grad_(trainable)
        self.feature_encoder._requires_grad = trainable  # transformers' flag for its gradient-checkpoint path

    @property
    def num_hooks(self) -> int:
        return len(self._hooks)

    def add_hook(self, hook: BackboneHook) -> RemovableHandle:
        """Register a method hook; ``handle.remove()`` detaches it. Hooks are not submodules."""
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = hook
        return handle

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) samples -> (B,) frames, by the front end's length formula."""
        return self.front_end.frame_lengths(lengths)

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> BackboneOutput:
        """wav (B, S) float, lengths (B,) real samples or None -> states (L+1, B, T, D), mask (B, T)."""
        lengths = self._check_input(wav, lengths)
        wav = wav[:, : self._trimmed_length(wav, lengths)]
        if self.normalize_wav:
            wav = _normalize(wav, lengths)
        return self.encode(self.front_end(wav, lengths), self.frame_lengths(lengths))

    def encode(self, h: torch.Tensor, frame_len: torch.Tensor, always_mask: bool = False) -> BackboneOutput:
        """Front-end frames h (B, T, D) with (B,) real frame counts -> :class:`BackboneOutput`.

        ``always_mask`` passes the mask even when nothing is padded (same result; no data-dependent
        branch, for export).
        """
        t = h.shape[1]
        mask = torch.arange(t, device=h.device).unsqueeze(0) < frame_len.unsqueeze(1)
        padded = always_mask or bool((frame_len < t).any())
        h = self.positions(h, mask if padded else None)
        states = self._layers(h, Frames(mask if padded else None))
        if self.stable_layer_norm and self.norm is not None:
            states[-1] = self.norm(states[-1])
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
            lengths = torch.full((b,), s, dtype=torch.long, device=wav.device)
        lengths = lengths.to(device=wav.device, dtype=torch.long)
        if lengths.shape != (b,) or bool((lengths > s).any()) or bool((lengths < 1).any()):
            raise ValueError(
                f"lengths must be (B,)={b} values in [1, {s}] (the padded wav length), got {lengths.tolist()}"
            )
        frames = self.frame_lengths(lengths)
        too_short = (frames < 1).nonzero().flatten().tolist()
        if too_short:
            raise ValueError(
                f"utterance(s) {too_short} too short for the {self.spec.name} front end (lengths "
                f"{lengths[too_short].tolist()} samples give no frame)"
            )
        self._check_max_frames(lengths, frames)
        return lengths

    def _trimmed_length(self, wav: torch.Tensor, lengths: torch.Tensor) -> int:
        """Samples the batch is cut to: the longest utterance, rounded up to a multiple of
        :attr:`length_bucket` (at most the padded length) so that a compiled model sees few shapes.
        The extra samples are padding, masked as any other (the states are those of the exact cut)."""
        n = int(lengths.max())
        if self.length_bucket > 0:
            n = min(wav.shape[1], -(-n // self.length_bucket) * self.length_bucket)
        return n

    def _check_max_frames(self, lengths: torch.Tensor, frames: torch.Tensor) -> None:
        limit = getattr(self.positions, "max_frames", None)
        if limit is None or int(frames.max()) <= limit:
            return
        too_long = (frames > limit).nonzero().flatten().tolist()
        raise ValueError(
            f"utterance(s) {too_long} too long for the {self.spec.name} backbone: lengths "
            f"{lengths[too_long].tolist()} samples give {frames[too_long].tolist()} frames, but its position "
            f"table has {limit} (30 s for Whisper); crop or chunk the audio (spkpeft eval embeds in "
            f"embed.chunk_seconds = 20 s chunks by default)"
        )

    def _layers(self, h: torch.Tensor, frames: Frames) -> list[torch.Tensor]:
        t = h.shape[1]
        states, cache = [h], {}
        hooks = list(self._hooks.values())
        for i, layer in enumerate(self.layers):
            for hook in hooks:
                h, frames = hook.before_layer(i, h, frames)
            kwargs = self._attention_kwargs(h, frames, cache)
            if self.checkpoint_layers and torch.is_grad_enabled():
                h = checkpoint(self._run_layer, layer, h, frames, kwargs, use_reentrant=False)
            else:
                h = self._run_layer(layer, h, frames, kwargs)
            for hook in reversed(hooks):
                h, frames = hook.after_layer(i, h, frames)
            states.append(h[:, h.shape[1] - t :])
        return states

    def _run_layer(self, layer: nn.Module, h: torch.Tensor, frames: Frames, kwargs: dict) -> torch.Tensor:
        """One Transformer layer with the ``ffn`` hooks live (also when a checkpoint reruns it)."""
        self._frames = frames
        try:
            out = layer(h, **kwargs)
        finally:
            self._frames, self._ffn_x = None, None
        return out[0] if isinstance(out, tuple) else out

    def _attention_kwargs(self, h: torch.Tensor, frames: Frames, cache: dict) -> dict[str, Any]:
        """The family's attention inputs for the current sequence, computed once per (length, mask)."""
        entries = cache.setdefault(h.shape[1], [])
        for mask, kwargs in entries:
            if mask is frames.mask:
                return kwargs
        kwargs = self.attention_inputs(h, frames.mask)
        entries.append((frames.mask, kwargs))
        return kwargs

    def _ffn_in_hook(self, module: nn.Module, args: tuple) -> None:
        if self._frames is not None and self._hooks:
            self._ffn_x = args[0]

    def _ffn_out_hook(self, i: int):
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
            if self._frames is None or not self._hooks:
                return None
            x, self._ffn_x = self._ffn_x, None
            y = output
            for h in self._hooks.values():
                y = h.ffn(i, x, y, self._frames)
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
    attn_implementation: str = "sdpa",
    **config_overrides: Any,
) -> SpeechBackbone:
    """A frozen :class:`SpeechBackbone` from a preset, a local ``save_pretrained`` directory or a hub id.

    ``device="meta"`` builds a preset with no memory (parameter counting). ``config_overrides`` go to
    the transformers config (e.g. ``do_stable_layer_norm=True``). ``attn_implementation``: ``sdpa``
    (``F.scaled_dot_product_attention`` in every family, WavLM's gated relative position bias as its
    additive mask) or ``eager`` (transformers' eager attention).
    """
    model, spec = load_hf_model(name_or_path, device=device, **config_overrides)
    set_attention_implementation(model, attn_implementation)
    model.requires_grad_(False)
    backbone = SpeechBackbone(model, spec, normalize_wav=normalize_wav)
    backbone.freeze_feature_encoder()
    return backbone
