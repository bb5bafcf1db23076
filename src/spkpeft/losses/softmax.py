"""Comparison heads: plain softmax (a linear classifier) and AM-softmax (CosFace, additive cosine margin:
target logit ``s * (cos_y - m)``; Wang et al. 2018)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spkpeft.losses.base import LOSSES, LossConfig, LossOutput, check_batch


@dataclass
class SoftmaxConfig(LossConfig):
    name: str = "softmax"


@dataclass
class AMSoftmaxConfig(LossConfig):
    """Args:
    margin: additive cosine margin m.
    scale: logit scale s.
    """

    name: str = "am_softmax"
    margin: float = 0.2
    scale: float = 30.0


class SoftmaxLoss(nn.Module):
    """Linear classifier + cross entropy. Has no margin: ``set_margin`` accepts only 0."""

    def __init__(self, cfg: SoftmaxConfig, embed_dim: int, num_classes: int) -> None:
        super().__init__()
        self.cfg, self.embed_dim, self.num_classes = cfg, embed_dim, num_classes
        self.classifier = nn.Linear(embed_dim, num_classes)
        self.margin = 0.0

    def set_margin(self, margin: float) -> None:
        if margin != 0.0:
            raise ValueError(f"softmax has no margin; a margin schedule must stay at 0, got {margin}")

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        check_batch(emb, labels, self.embed_dim, self.num_classes, "softmax")
        logits = self.classifier(emb)
        return LossOutput(F.cross_entropy(logits, labels.long()), logits.detach())


class AMSoftmax(nn.Module):
    """AM-softmax head: logits s * cos, minus s * m on the target class."""

    def __init__(self, cfg: AMSoftmaxConfig, embed_dim: int, num_classes: int) -> None:
        super().__init__()
        self.cfg, self.embed_dim, self.num_classes = cfg, embed_dim, num_classes
        self.weight = nn.Parameter(torch.empty(num_classes, embed_dim))
        nn.init.xavier_uniform_(self.weight)
        self.set_margin(cfg.margin)

    def set_margin(self, margin: float) -> None:
        if margin < 0:
            raise ValueError(f"am_softmax: margin must be >= 0, got {margin}")
        self.margin = float(margin)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        check_batch(emb, labels, self.embed_dim, self.num_classes, "am_softmax")
        with torch.autocast(emb.device.type, enabled=False):  # margins need float32 precision
            cos = F.linear(F.normalize(emb.float(), dim=1), F.normalize(self.weight.float(), dim=1))
        one_hot = F.one_hot(labels.long(), self.num_classes).to(cos.dtype)
        logits = self.cfg.scale * (cos - self.margin * one_hot)
        return LossOutput(F.cross_entropy(logits, labels.long()), self.cfg.scale * cos.detach())


@LOSSES.register("softmax", config_cls=SoftmaxConfig)
def build_softmax(cfg: SoftmaxConfig, embed_dim: int, num_classes: int) -> SoftmaxLoss:
    """Plain softmax cross entropy over a linear classifier."""
    return SoftmaxLoss(cfg, embed_dim, num_classes)


@LOSSES.register("am_softmax", config_cls=AMSoftmaxConfig)
def build_am_softmax(cfg: AMSoftmaxConfig, embed_dim: int, num_classes: int) -> AMSoftmax:
    """Additive cosine margin softmax (CosFace; m 0.2, s 30)."""
    return AMSoftmax(cfg, embed_dim, num_classes)
