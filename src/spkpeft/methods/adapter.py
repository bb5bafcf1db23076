"""``adapter``: a parallel bottleneck adapter beside each Transformer layer's feed-forward block,
``ffn_out + s * Up(ReLU(Down(ffn_in)))`` (He et al. 2022, "Towards a unified view of PETL"; the inner
adapter of UniPET-SPK, Sang & Hansen 2025), bottleneck 256, scale s = 0.5, Up zero-initialised.

``ffn_in`` is the feed-forward block's own input (after the post-attention norm in post-LN models,
after ``final_layer_norm`` in pre-LN models), taken from a hook on the family's FFN module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spkpeft.backbones.backbone import Frames, SpeechBackbone
from spkpeft.methods.base import METHODS, MethodConfig
from spkpeft.methods.bottleneck import Bottleneck
from spkpeft.methods.module_method import ModuleMethod


@dataclass
class AdapterConfig(MethodConfig):
    GROUPS = ("adapter",)
    name: str = "adapter"
    bottleneck: int = 256
    scale: float = 0.5


class Adapter(ModuleMethod):
    """One :class:`Bottleneck` per layer, added in parallel to the FFN output."""

    def __init__(self, cfg: AdapterConfig, backbone: SpeechBackbone) -> None:
        super().__init__(cfg, backbone)
        with torch.device(backbone.device):
            self.adapters = nn.ModuleList(
                Bottleneck(backbone.hidden_size, cfg.bottleneck) for _ in range(backbone.num_layers)
            )

    def ffn(self, i: int, x: torch.Tensor, y: torch.Tensor, frames: Frames) -> torch.Tensor:
        return y + self.cfg.scale * self.adapters[i](x)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"adapter": list(self.parameters())}


@METHODS.register("adapter", config_cls=AdapterConfig)
def build_adapter(cfg: AdapterConfig, backbone: SpeechBackbone) -> Adapter:
    """Parallel bottleneck adapters beside every FFN (bottleneck 256, scale 0.5)."""
    method = Adapter(cfg, backbone)
    method.attach()
    return method
