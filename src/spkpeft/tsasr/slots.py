"""Where the prompt slots live inside a frozen Whisper, and the hooks that fill them.

Encoder (Whisper's encoder takes a fixed window of ``2 * max_source_positions`` mel frames and adds fixed
positional embeddings, so slots cannot be appended): as in the reference code, the mel input is shifted
right by ``2 * n`` zero frames (the conv stride is 2) and its last ``2 * n`` frames are dropped, so the
first ``n`` encoder positions carry no audio. A forward pre-hook on encoder block ``i`` overwrites them:
position 0 with the projected speaker embedding (block 0 only; deeper blocks keep its evolving state)
and positions ``1 .. P`` with block ``i``'s prompts (every block up to the prompt depth). Audio must
therefore be at most ``window - 2 * n * 10 ms`` long; :func:`shift_features` checks it.

Decoder: the slots are reserved by token count, never by a string: the decoder input is
``<|startofprev|>`` + P filler ids + Whisper's usual ``<|startoftranscript|><|en|><|transcribe|>...``.
That is exactly Whisper's "previous text" layout, so ``generate(prompt_ids=...)`` handles it and the
tokenizer strips it when decoding. A pre-hook on decoder block ``i`` overwrites positions ``1 .. P``
(only in the forward pass that covers them: the first step of generation or a training pass). The loss
ignores every position up to and including the one that predicts ``<|startoftranscript|>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from spkpeft.tsasr.prompts import TSPrompts

IGNORE = -100


def shift_features(features: torch.Tensor, slots: int, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """(B, M, N) log-mel -> (B, M, N) with ``2 * slots`` zero frames in front and the tail dropped.

    ``lengths`` (B,) real mel frames per row; a row whose audio would be cut raises ValueError.
    """
    n = 2 * slots
    if n == 0:
        return features
    if lengths is not None and int(lengths.max()) > features.shape[-1] - n:
        raise ValueError(
            f"audio of {int(lengths.max())} mel frames does not fit: the {features.shape[-1]}-frame window "
            f"keeps {features.shape[-1] - n} after reserving {slots} prompt slots; shorten the audio"
        )
    pad = features.new_zeros(*features.shape[:-1], n)
    return torch.cat([pad, features[..., :-n]], dim=-1)


def _replace(h: torch.Tensor, start: int, values: torch.Tensor) -> torch.Tensor:
    """h (B, T, D) with rows ``start : start + len`` replaced by ``values`` ((len, D) or (B, len, D))."""
    if values.ndim == 2:
        values = values.unsqueeze(0).expand(h.shape[0], -1, -1)
    end = start + values.shape[1]
    return torch.cat([h[:, :start], values.to(h.dtype), h[:, end:]], dim=1)


class SlotHooks:
    """Installs the encoder/decoder pre-hooks of :class:`TSPrompts` on a ``WhisperForConditionalGeneration``
    (or any model with ``.model.encoder.layers`` / ``.model.decoder.layers``, e.g. after LoRA injection).

    The speaker vectors for the current batch are set with :meth:`speaker`; the encoder raises if a
    prompted forward pass runs without them.
    """

    def __init__(self, whisper: nn.Module, prompts: TSPrompts) -> None:
        self.prompts = prompts
        self._speaker: torch.Tensor | None = None
        self._dec_offset = 0
        core = whisper.model
        self._handles = [core.decoder.register_forward_pre_hook(self._decoder_start, with_kwargs=True)]
        for i, layer in enumerate(core.encoder.layers):
            self._handles.append(layer.register_forward_pre_hook(self._encoder_hook(i)))
        for i, layer in enumerate(core.decoder.layers):
            self._handles.append(layer.register_forward_pre_hook(self._decoder_hook(i)))

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    @contextmanager
    def speaker(self, emb: torch.Tensor | None) -> Iterator[None]:
        """Condition every forward pass inside the block on ``emb`` (B, E) (None: no speaker slot)."""
        self._speaker = None if emb is None else self.prompts.speaker(emb)
        try:
            yield
        finally:
            self._speaker = None

    def _encoder_hook(self, i: int):  # noqa: ANN202
        def hook(module: nn.Module, args: tuple) -> tuple:
            h, rest = args[0], args[1:]
            if i == 0 and self.prompts.speaker_proj is not None:
                if self._speaker is None:
                    raise RuntimeError("prompted encoder ran without a speaker embedding (use .speaker(emb))")
                if self._speaker.shape[0] != h.shape[0]:
                    raise ValueError(
                        f"{self._speaker.shape[0]} speaker embeddings for a batch of {h.shape[0]}"
                    )
                h = _replace(h, 0, self._speaker.unsqueeze(1))
            p = self.prompts.encoder_prompts(i)
            if p is not None:
                h = _replace(h, self.prompts.encoder_slots - self.prompts.cfg.length, p)
            return (h, *rest)

        return hook

    def _decoder_start(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        # The decoder's cache argument is ``past_key_values`` up to transformers 5.2x and ``cache`` after
        # (5.24 renamed it); a pass that starts past position 0 (a cached generation step) has no slots.
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        self._dec_offset = int(cache.get_seq_length()) if hasattr(cache, "get_seq_length") else 0

    def _decoder_hook(self, i: int):  # noqa: ANN202
        def hook(module: nn.Module, args: tuple) -> tuple | None:
            p = self.prompts.decoder_prompts(i)
            if p is None or self._dec_offset > 0:  # slots 1..P only appear in a pass starting at 0
                return None
            h = args[0]
            if h.shape[1] < 1 + p.shape[0]:
                raise ValueError(
                    f"decoder input of {h.shape[1]} tokens is shorter than its {p.shape[0]} slots"
                )
            return (_replace(h, 1, p), *args[1:])

        return hook
