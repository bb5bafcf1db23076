"""``prompt``: static (shallow) prompt tuning: P = 30 learned vectors prepended to the input of the first
Transformer layer only; they travel through every layer (attended to, and updated, like frames) and are
dropped after the last one, so they never reach the returned hidden states (speaker prompt tuning, Li,
Mak & Meng, ICASSP 2024, "Dual parameter-efficient fine-tuning for speaker representation via speaker
prompt tuning and adapters"; the "static prompt tuning" baseline of SpectralFT, Li et al. 2025).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from spkpeft.backbones.backbone import Frames, SpeechBackbone
from spkpeft.methods.base import METHODS, MethodConfig
from spkpeft.methods.module_method import ModuleMethod
from spkpeft.methods.prompt_bank import PromptBank, check_prompt_init


@dataclass
class PromptConfig(MethodConfig):
    GROUPS = ("prompt",)
    name: str = "prompt"
    prompt_length: int = 30
    prompt_init: str = "xavier"  # or "frames": from the training data (methods/prompt_bank.py)


def prompt_data_init(bank: PromptBank, prompt_init: str, forward: Callable[[], object]) -> None:
    """The ``data_init`` of a method with prompts: with ``prompt_init: frames``, set them from the frames
    of ``forward()`` (:meth:`PromptBank.init_from_frames`); with ``xavier``, nothing to do."""
    if prompt_init == "frames":
        bank.init_from_frames(forward)


def prepend_prompts(
    bank: PromptBank, layer: int, h: torch.Tensor, frames: Frames, scale: torch.Tensor | None = None
) -> tuple[torch.Tensor, Frames]:
    """Prepend the bank's prompts of ``layer`` to h (B, N, D) -> (B, P + N, D) and extend the frames."""
    if bank.observing:  # data-dependent init (prompt_init: frames), one forward at the start
        bank.observe(layer, h, frames.speech_mask(h))
    out, mask = bank.prepend(layer, h, frames.mask, scale)
    return out, Frames(mask, frames.num_prefix + bank.length)


class Prompt(ModuleMethod):
    def __init__(self, cfg: PromptConfig, backbone: SpeechBackbone) -> None:
        super().__init__(cfg, backbone)
        with torch.device(backbone.device):
            self.prompts = PromptBank(1, cfg.prompt_length, backbone.hidden_size)

    def before_layer(self, i: int, h: torch.Tensor, frames: Frames) -> tuple[torch.Tensor, Frames]:
        return prepend_prompts(self.prompts, 0, h, frames) if i == 0 else (h, frames)

    def after_layer(self, i: int, h: torch.Tensor, frames: Frames) -> tuple[torch.Tensor, Frames]:
        last = i == self.backbone.num_layers - 1
        return frames.strip(h, self.prompts.length) if last else (h, frames)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"prompt": list(self.parameters())}

    def data_init(self, forward: Callable[[], object]) -> None:
        prompt_data_init(self.prompts, self.cfg.prompt_init, forward)


@METHODS.register("prompt", config_cls=PromptConfig)
def build_prompt(cfg: PromptConfig, backbone: SpeechBackbone) -> Prompt:
    """Static prompts (30) prepended at the first Transformer layer only."""
    check_prompt_init(cfg.prompt_init, cfg.name)
    method = Prompt(cfg, backbone)
    method.attach()
    return method
