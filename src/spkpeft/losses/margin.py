"""Additive angular margin softmax (AAM / ArcFace) with sub-centres and the inter-top-k penalty.

Follows WeSpeaker's ``ArcMarginProduct`` / ``ArcMarginProduct_intertopk_subcenter``:

- ``cos_j = <emb/|emb|, w_j/|w_j|>``; with K sub-centres per class, ``cos_j = max_k cos_{j,k}``
  (Deng et al., Sub-center ArcFace, ECCV 2020).
- Target logit ``cos(theta_y + m)``; where ``cos_y <= cos(pi - m)`` (theta + m would pass pi and the logit
  would rise again) it is ``cos_y - (1 + cos(pi - m))`` instead, which meets ``cos(theta + m)`` at the
  threshold (WeSpeaker's "mmm"). With ``easy_margin`` the margin applies only where ``cos_y > 0``.
- Inter-top-k (Zhao et al., arXiv 2110.05042; the LAP paper's loss): the k non-target classes with the
  largest cosine get ``cos(theta_j - m')``, a larger logit, so the hardest impostor classes are pushed
  away harder. ``m'`` follows the margin schedule: ``m' = penalty * m / final_margin`` (WeSpeaker scales
  by ``m / 0.2``; here the configured margin takes 0.2's place, so at the final margin m' = penalty).
- Logits = scale * (modified cosines); loss = cross entropy. The returned logits are scale * cos
  (no margin, no penalty) for accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spkpeft.losses.base import LOSSES, LossConfig, LossOutput, check_batch


@dataclass
class AAMConfig(LossConfig):
    """Args:
    margin: additive angular margin m (radians).
    scale: logit scale s.
    easy_margin: apply the margin only where the target cosine is positive.
    subcenters: K centres per class (1 = plain AAM).
    topk: number of hardest non-target classes that get the inter-top-k penalty (0 = off).
    topk_penalty: angular penalty m' for those classes at the final margin.
    """

    name: str = "aam"
    margin: float = 0.2
    scale: float = 30.0
    easy_margin: bool = False
    subcenters: int = 1
    topk: int = 0
    topk_penalty: float = 0.0


@dataclass
class SubcenterAAMConfig(AAMConfig):
    name: str = "aam_subcenter"
    subcenters: int = 3


@dataclass
class InterTopKSubcenterAAMConfig(AAMConfig):
    """The LAP paper's loss: 3 sub-centres, inter-top-k with k 5 and penalty 0.06."""

    name: str = "aam_intertopk_subcenter"
    subcenters: int = 3
    topk: int = 5
    topk_penalty: float = 0.06


class AAMSoftmax(nn.Module):
    """AAM-softmax head: ``forward(emb (B, E), labels (B,)) -> LossOutput(loss, logits (B, C))``."""

    def __init__(self, cfg: AAMConfig, embed_dim: int, num_classes: int) -> None:
        super().__init__()
        if cfg.subcenters < 1:
            raise ValueError(f"{cfg.name}.subcenters must be >= 1, got {cfg.subcenters}")
        if cfg.topk < 0 or cfg.topk >= num_classes:
            raise ValueError(
                f"{cfg.name}.topk must be in [0, num_classes - 1] = [0, {num_classes - 1}], got {cfg.topk}"
            )
        self.cfg, self.embed_dim, self.num_classes = cfg, embed_dim, num_classes
        self.weight = nn.Parameter(torch.empty(num_classes * cfg.subcenters, embed_dim))
        nn.init.xavier_uniform_(self.weight)
        self.set_margin(cfg.margin)

    def set_margin(self, margin: float) -> None:
        """Set the margin m (and the inter-top-k penalty that scales with it)."""
        if margin < 0 or margin >= math.pi / 2:
            raise ValueError(f"{self.cfg.name}: margin must be in [0, pi/2), got {margin}")
        self.margin = float(margin)
        ratio = margin / self.cfg.margin if self.cfg.margin > 0 else 1.0
        self.topk_margin = self.cfg.topk_penalty * ratio if margin > 1e-3 else 0.0

    def cosine(self, emb: torch.Tensor) -> torch.Tensor:
        """(B, E) -> (B, C) float32 cosine to the nearest sub-centre of each class (margins need the
        precision, so this runs outside autocast)."""
        with torch.autocast(emb.device.type, enabled=False):
            cos = F.linear(F.normalize(emb.float(), dim=1), F.normalize(self.weight.float(), dim=1))
        if self.cfg.subcenters > 1:
            cos = cos.view(-1, self.num_classes, self.cfg.subcenters).amax(dim=2)
        return cos

    def margin_logits(self, cos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, C) cosines -> (B, C) cosines with margin on the target and penalty on the top-k."""
        m = self.margin
        sine = (1.0 - cos * cos).clamp(min=1e-7, max=1.0).sqrt()
        phi = cos * math.cos(m) - sine * math.sin(m)  # cos(theta + m)
        if self.cfg.easy_margin:
            phi = torch.where(cos > 0, phi, cos)
        else:
            phi = torch.where(cos > math.cos(math.pi - m), phi, cos - (1.0 + math.cos(math.pi - m)))
        one_hot = F.one_hot(labels, self.num_classes).to(cos.dtype)
        out = one_hot * phi + (1.0 - one_hot) * cos
        if self.cfg.topk > 0 and self.topk_margin > 0:
            mp = self.topk_margin
            phi_mp = cos * math.cos(mp) + sine * math.sin(mp)  # cos(theta - m')
            top = torch.topk(cos - 2.0 * one_hot, self.cfg.topk, dim=1).indices
            top_hot = torch.zeros_like(cos).scatter_(1, top, 1.0)
            out = out + top_hot * (phi_mp - cos)
        return out

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        check_batch(emb, labels, self.embed_dim, self.num_classes, self.cfg.name)
        cos = self.cosine(emb)
        logits = self.cfg.scale * self.margin_logits(cos, labels.long())
        loss = F.cross_entropy(logits, labels.long())
        return LossOutput(loss, self.cfg.scale * cos.detach())


@LOSSES.register("aam", config_cls=AAMConfig)
def build_aam(cfg: AAMConfig, embed_dim: int, num_classes: int) -> AAMSoftmax:
    """Additive angular margin softmax (ArcFace; m 0.2, s 30)."""
    return AAMSoftmax(cfg, embed_dim, num_classes)


@LOSSES.register("aam_subcenter", config_cls=SubcenterAAMConfig)
def build_aam_subcenter(cfg: SubcenterAAMConfig, embed_dim: int, num_classes: int) -> AAMSoftmax:
    """Sub-centre AAM-softmax (K 3 centres per class, max over centres)."""
    return AAMSoftmax(cfg, embed_dim, num_classes)


@LOSSES.register("aam_intertopk_subcenter", config_cls=InterTopKSubcenterAAMConfig)
def build_aam_intertopk(cfg: InterTopKSubcenterAAMConfig, embed_dim: int, num_classes: int) -> AAMSoftmax:
    """Sub-centre AAM with the inter-top-k penalty (k 5, 0.06): the LAP paper's loss."""
    return AAMSoftmax(cfg, embed_dim, num_classes)
