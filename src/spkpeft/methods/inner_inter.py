"""``inner_inter``: Inner+Inter adapters of UniPET-SPK (Sang & Hansen 2025, Sec. III-B): the parallel
inner adapters of :mod:`spkpeft.methods.adapter` plus one inter adapter on the weighted sum of the
layers, ``x + s_inter * Up(ReLU(Down(x)))`` applied through :meth:`adapt_aggregate` by the back-end.
Both Up projections start at zero, so the whole model starts equal to the frozen backbone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spkpeft.backbones.backbone import SpeechBackbone
from spkpeft.methods.adapter import Adapter, AdapterConfig
from spkpeft.methods.base import METHODS
from spkpeft.methods.bottleneck import Bottleneck


@dataclass
class InnerInterConfig(AdapterConfig):
    GROUPS = ("adapter",)
    name: str = "inner_inter"
    inter_bottleneck: int = 256
    inter_scale: float = 1.0


def inter_adapt(inter: Bottleneck, scale: float, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Residual inter adapter on the layer sum: x (B, T, D), mask (B, T) -> (B, T), padding kept zero."""
    out = x + scale * inter(x)
    return out if mask is None else out * mask.to(out.dtype).unsqueeze(-1)


class InnerInter(Adapter):
    def __init__(self, cfg: InnerInterConfig, backbone: SpeechBackbone) -> None:
        super().__init__(cfg, backbone)
        with torch.device(backbone.device):
            self.inter = Bottleneck(backbone.hidden_size, cfg.inter_bottleneck)

    def adapt_aggregate(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return inter_adapt(self.inter, self.cfg.inter_scale, x, mask)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"adapter": list(self.parameters())}


@METHODS.register("inner_inter", config_cls=InnerInterConfig)
def build_inner_inter(cfg: InnerInterConfig, backbone: SpeechBackbone) -> InnerInter:
    """Inner adapters beside every FFN + an inter adapter on the layer sum (UniPET-SPK's adapter arm)."""
    method = InnerInter(cfg, backbone)
    method.attach()
    return method
