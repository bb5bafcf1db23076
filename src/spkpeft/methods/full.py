"""``full``: full fine-tuning of every backbone parameter the forward uses, the front end's feature
encoder (CNN, Whisper's convolutions) excepted by default (``train_feature_encoder: true`` trains it too)
and the family's fixed parameters (``FamilySpec.fixed``) never."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from spkpeft.backbones.backbone import SpeechBackbone
from spkpeft.methods.base import METHODS, MethodConfig
from spkpeft.methods.module_method import ModuleMethod


@dataclass
class FullConfig(MethodConfig):
    GROUPS = ("backbone",)
    name: str = "full"
    train_feature_encoder: bool = False


class Full(ModuleMethod):
    def own_parameters(self) -> dict[str, nn.Parameter]:
        """``full.<transformers name>`` of every trainable backbone parameter."""
        return {f"{self.name}.{n}": p for n, p in self.backbone.model.named_parameters() if p.requires_grad}

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"backbone": list(self.own_parameters().values())}

    def merge(self) -> nn.Module:
        """The fine-tuned weights are the model's own: the transformers model itself."""
        return self.backbone.model


@METHODS.register("full", config_cls=FullConfig)
def build_full(cfg: FullConfig, backbone: SpeechBackbone) -> Full:
    """Full fine-tuning (CNN feature encoder frozen unless ``train_feature_encoder``)."""
    method = Full(cfg, backbone)
    method.attach()  # freezes everything; unfreeze what full fine-tuning trains
    fixed = backbone.spec.fixed  # never trained: the SSL mask vector, Whisper's sinusoid table, ...
    for n, p in backbone.model.named_parameters():
        p.requires_grad_(not n.startswith(fixed))
    backbone.set_feature_encoder_trainable(cfg.train_feature_encoder)
    return method
