"""``frozen``: the backbone as pre-trained; nothing in it trains (only the back-end does)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from spkpeft.backbones.backbone import SpeechBackbone
from spkpeft.methods.base import METHODS, MethodConfig
from spkpeft.methods.module_method import ModuleMethod


@dataclass
class FrozenConfig(MethodConfig):
    name: str = "frozen"


class Frozen(ModuleMethod):
    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {}

    def merge(self) -> nn.Module:
        """Nothing to fold: the transformers model itself."""
        return self.backbone.model


@METHODS.register("frozen", config_cls=FrozenConfig)
def build_frozen(cfg: FrozenConfig, backbone: SpeechBackbone) -> Frozen:
    """Frozen backbone: no trainable backbone parameter (the baseline of every PEFT comparison)."""
    method = Frozen(cfg, backbone)
    method.attach()
    return method
