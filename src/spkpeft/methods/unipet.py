"""``unipet``: UniPET-SPK (Sang & Hansen 2025, arXiv 2501.16542): inner adapters + inter adapter + Deep
Speaker Prompting, mixed per layer by learned gates (UniPELT form; IMPLEMENTATION_NOTES section 1).

Per layer i, per utterance:
- prompt gate ``g_P = mean_t sigmoid(w_P^T h_t + b_P)`` over the layer input's real speech frames (no
  prompt, no padding); the prepended prompts are ``g_P * P_i``;
- adapter gate ``g_A = mean_t sigmoid(w_A^T x_t + b_A)`` over the FFN input's real speech frames; the FFN
  output becomes ``ffn(x) + s * g_A * Up(ReLU(Down(x)))``;
- the inter adapter acts on the weighted layer sum (:meth:`adapt_aggregate`).
Gates start at w = 0, b = ``gate_bias_init`` (1.0: g = 0.73). Up projections start at zero, so at init
the adapters are silent and only the (gated) prompts change the output. :meth:`stats` reports the mean
gate of each layer from the last forward (``gate/adapter/3``, ``gate/prompt/3``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from spkpeft.backbones.backbone import Frames, SpeechBackbone
from spkpeft.methods.base import METHODS, MethodConfig
from spkpeft.methods.bottleneck import Bottleneck, Gate
from spkpeft.methods.inner_inter import inter_adapt
from spkpeft.methods.module_method import ModuleMethod
from spkpeft.methods.prompt import prepend_prompts, prompt_data_init
from spkpeft.methods.prompt_bank import PromptBank, check_prompt_init


@dataclass
class UniPETConfig(MethodConfig):
    GROUPS = ("adapter", "gate", "prompt")
    name: str = "unipet"
    bottleneck: int = 256
    scale: float = 0.5
    inter_bottleneck: int = 256
    inter_scale: float = 1.0
    prompt_length: int = 30
    gate_bias_init: float = 1.0
    prompt_init: str = "xavier"  # or "frames": from the training data (methods/prompt_bank.py)


class UniPET(ModuleMethod):
    def __init__(self, cfg: UniPETConfig, backbone: SpeechBackbone) -> None:
        super().__init__(cfg, backbone)
        d, n = backbone.hidden_size, backbone.num_layers
        with torch.device(backbone.device):
            self.adapters = nn.ModuleList(Bottleneck(d, cfg.bottleneck) for _ in range(n))
            self.inter = Bottleneck(d, cfg.inter_bottleneck)
            self.prompts = PromptBank(n, cfg.prompt_length, d)
            self.adapter_gates = nn.ModuleList(Gate(d, cfg.gate_bias_init) for _ in range(n))
            self.prompt_gates = nn.ModuleList(Gate(d, cfg.gate_bias_init) for _ in range(n))
        self._last_gates: dict[str, torch.Tensor] = {}

    def before_layer(self, i: int, h: torch.Tensor, frames: Frames) -> tuple[torch.Tensor, Frames]:
        g = self.prompt_gates[i](h, frames.speech_mask(h))  # (B,)
        self._last_gates[f"gate/prompt/{i}"] = g.detach()
        return prepend_prompts(self.prompts, i, h, frames, scale=g)

    def ffn(self, i: int, x: torch.Tensor, y: torch.Tensor, frames: Frames) -> torch.Tensor:
        g = self.adapter_gates[i](x, frames.speech_mask(x))  # (B,)
        self._last_gates[f"gate/adapter/{i}"] = g.detach()
        return y + self.cfg.scale * g.to(y.dtype)[:, None, None] * self.adapters[i](x)

    def after_layer(self, i: int, h: torch.Tensor, frames: Frames) -> tuple[torch.Tensor, Frames]:
        return frames.strip(h, self.prompts.length)

    def adapt_aggregate(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return inter_adapt(self.inter, self.cfg.inter_scale, x, mask)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {
            "adapter": [*self.adapters.parameters(), *self.inter.parameters()],
            "gate": [*self.adapter_gates.parameters(), *self.prompt_gates.parameters()],
            "prompt": list(self.prompts.parameters()),
        }

    def data_init(self, forward: Callable[[], object]) -> None:
        prompt_data_init(self.prompts, self.cfg.prompt_init, forward)

    def stats(self) -> dict[str, float]:
        """Mean gate value per layer and kind over the last forward's batch."""
        return {k: float(v.float().mean()) for k, v in sorted(self._last_gates.items())}


@METHODS.register("unipet", config_cls=UniPETConfig)
def build_unipet(cfg: UniPETConfig, backbone: SpeechBackbone) -> UniPET:
    """UniPET-SPK: gated inner adapters + deep prompts, plus an inter adapter on the layer sum."""
    check_prompt_init(cfg.prompt_init, cfg.name)
    method = UniPET(cfg, backbone)
    method.attach()
    return method
