"""Learned prompt vectors, shared by Deep Speaker Prompting (WavLM/HuBERT/wav2vec2) and Whisper prompt
tuning: a bank of ``(depth, P, D)`` vectors, prepended to a layer's input and stripped after it.

Padding stays at the end of each sequence (right-padded batches), so prompts at the front never change
the relative position of real frames, and the extended mask keeps padded frames out of attention.

Initialisation (``prompt_init`` of the prompt methods):
- ``xavier`` (the papers'): Xavier-uniform random vectors.
- ``frames``: data-dependent, in the manner of Glow's ActNorm: on one batch of the training data at the
  start of a fresh run (:meth:`PromptBank.init_from_frames`, called by the trainer through the method's
  ``data_init``), each layer's prompts become the mean of that layer's real input frames plus 10 % of
  their per-dimension spread as noise (so the prompts differ and can move apart). A pre-LN encoder
  (Whisper) layer-normalises every prompt before attention, so a random prompt enters it at the scale of
  a frame whatever its init scale; a prompt that looks like an average frame changes the frames' states
  far less at the start.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

PROMPT_INITS = ("xavier", "frames")
NOISE = 0.1  # ``frames`` init: noise std as a fraction of the frames' per-dimension std


def check_prompt_init(value: str, owner: str) -> None:
    if value not in PROMPT_INITS:
        raise ValueError(f"{owner}.prompt_init={value!r}; valid: {', '.join(PROMPT_INITS)}")


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
        self._from_frames: set[int] = set()  # layers still waiting for init_from_frames' forward

    @torch.no_grad()
    def init_from_frames(self, forward: Callable[[], object]) -> None:
        """Set every layer's prompts from the frames of one forward (``forward()``, e.g. the model on a
        training batch): mean of the layer's real input frames + ``NOISE`` x their std x N(0, 1). Layers
        are set in order as the forward reaches them, so a layer's frames already see the new prompts of
        the layers before it."""
        self._from_frames = set(range(self.depth))
        try:
            forward()
            if self._from_frames:
                raise RuntimeError(
                    f"the forward never reached the prompts of layer(s) {sorted(self._from_frames)}"
                )
        finally:
            self._from_frames = set()

    @property
    def observing(self) -> bool:
        """True while :meth:`init_from_frames` waits for layer inputs (:meth:`observe`)."""
        return bool(self._from_frames)

    def observe(self, layer: int, h: torch.Tensor, speech: torch.Tensor) -> None:
        """Called before :meth:`prepend` with the layer input ``h`` (B, N, D) and ``speech`` (B, N) bool,
        True on real speech frames; sets the layer's prompts while :meth:`init_from_frames` runs."""
        if layer not in self._from_frames:
            return
        frames = h.detach()[speech].float()  # (F, D)
        if frames.shape[0] < 2:
            raise ValueError(f"prompt init from frames: layer {layer} saw {frames.shape[0]} real frame(s)")
        mean, std = frames.mean(0), frames.std(0)
        noise = torch.randn(self.length, self.dim, device=mean.device) * std * NOISE
        self.prompts.data[layer] = (mean + noise).to(self.prompts.dtype)
        self._from_frames.discard(layer)

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
