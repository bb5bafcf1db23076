"""``deep_prompt``: Deep Speaker Prompting (UniPET-SPK, Sang & Hansen 2025, Sec. IV): P = 30 fresh learned
vectors (Xavier-uniform) prepended to the input of every Transformer layer; after each layer its P
prompt outputs are dropped and the next layer's prompts are prepended. Prompt frames never reach the
returned hidden states (hence never the layer aggregation or the back-end).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from spkpeft.backbones.backbone import Frames, SpeechBackbone
from spkpeft.methods.base import METHODS, MethodConfig
from spkpeft.methods.module_method import ModuleMethod
from spkpeft.methods.prompt import prepend_prompts, prompt_data_init
from spkpeft.methods.prompt_bank import PromptBank, check_prompt_init


@dataclass
class DeepPromptConfig(MethodConfig):
    GROUPS = ("prompt",)
    name: str = "deep_prompt"
    prompt_length: int = 30
    prompt_init: str = "xavier"  # or "frames": from the training data (methods/prompt_bank.py)


class DeepPrompt(ModuleMethod):
    def __init__(self, cfg: DeepPromptConfig, backbone: SpeechBackbone) -> None:
        super().__init__(cfg, backbone)
        with torch.device(backbone.device):
            self.prompts = PromptBank(backbone.num_layers, cfg.prompt_length, backbone.hidden_size)

    def before_layer(self, i: int, h: torch.Tensor, frames: Frames) -> tuple[torch.Tensor, Frames]:
        return prepend_prompts(self.prompts, i, h, frames)

    def after_layer(self, i: int, h: torch.Tensor, frames: Frames) -> tuple[torch.Tensor, Frames]:
        return frames.strip(h, self.prompts.length)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"prompt": list(self.parameters())}

    def data_init(self, forward: Callable[[], object]) -> None:
        prompt_data_init(self.prompts, self.cfg.prompt_init, forward)


@METHODS.register("deep_prompt", config_cls=DeepPromptConfig)
def build_deep_prompt(cfg: DeepPromptConfig, backbone: SpeechBackbone) -> DeepPrompt:
    """Deep Speaker Prompting: 30 fresh prompts per layer, stripped after it."""
    check_prompt_init(cfg.prompt_init, cfg.name)
    method = DeepPrompt(cfg, backbone)
    method.attach()
    return method
