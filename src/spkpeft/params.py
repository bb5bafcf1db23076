"""Parameter accounting: build a backbone and a method on the meta device (shapes only, no memory, no
weights) and count total and trainable parameters per component.

Counting rules (see docs/params.md):

- ``backbone_cnn``: the front end's feature encoder (``FamilySpec.feature_encoder``: the CNN waveform
  encoder, Whisper's two convolutions); ``backbone_transformer``: every other parameter of the
  transformers model as published (feature projection, positional convolution or Whisper's fixed
  sinusoid table, layers, norms, and the SSL ``masked_spec_embed`` vector where the checkpoint has one).
  ``backbone_total`` is their sum: the published model's size, whatever the method does to it.
- ``method``: the parameters the method trains (its ``own_parameters()``), by ``param_groups()``.
  ``method_added``: those that are new (not backbone weights) - all of them for every method but
  ``full``, whose trained parameters are the backbone's own.
- ``total = backbone_total + method_added``; ``trainable`` = distinct parameters with
  ``requires_grad`` among backbone and method; ``fraction = trainable / total``. For a method on a
  frozen backbone this is ``method / (backbone_total + method)``. The back-end and loss head are not
  counted (they are the same for every method).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import transformers
from torch import nn

from spkpeft.backbones.backbone import SpeechBackbone, load_backbone
from spkpeft.backbones.families import family_of_model_type
from spkpeft.backbones.faster_whisper import resolve_whisper_source
from spkpeft.backbones.presets import PRESETS
from spkpeft.config import parse_named, to_dict
from spkpeft.methods import METHODS, MethodConfig


@dataclass
class ParamCount:
    """Parameter counts of one backbone + method combination (see the module docstring)."""

    backbone_name: str
    method_name: str
    method_config: dict[str, Any]
    backbone_cnn: int
    backbone_transformer: int
    backbone_total: int
    backbone_trainable: int
    method: int
    method_added: int
    groups: dict[str, int] = field(default_factory=dict)
    total: int = 0
    trainable: int = 0

    @property
    def fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "fraction": self.fraction}


def meta_backbone(name_or_path: str | Path) -> SpeechBackbone:
    """A frozen :class:`SpeechBackbone` with every parameter on the meta device.

    Presets build directly on the meta device; a local model directory is built from its
    ``config.json`` alone (its weights are never read); a faster-whisper directory or ``whisper-tiny.en``
    is first resolved to its converted transformers directory.
    """
    name = resolve_whisper_source(name_or_path)
    if name in PRESETS:
        return load_backbone(name, device="meta")
    path = Path(name)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"backbone {name!r} is neither a preset ({', '.join(sorted(PRESETS))}) nor a model directory "
            f"with a config.json"
        )
    cfg = transformers.AutoConfig.from_pretrained(path, trust_remote_code=False)
    spec = family_of_model_type(cfg.model_type)
    with torch.device("meta"):
        model = spec.model_class()(cfg)
    model.requires_grad_(False)
    backbone = SpeechBackbone(model, spec)
    backbone.freeze_feature_encoder()
    return backbone


def count_parameters(backbone_name: str | Path, method_cfg: MethodConfig) -> ParamCount:
    """Build ``backbone_name`` + the method of ``method_cfg`` on the meta device and count parameters."""
    with torch.device("meta"):
        backbone = meta_backbone(backbone_name)
        pristine = dict(backbone.model.named_parameters())
        method = METHODS.build(method_cfg.name, method_cfg, backbone)
    cnn_ids = {id(p) for p in backbone.feature_encoder.parameters()}
    cnn = sum(p.numel() for p in pristine.values() if id(p) in cnn_ids)
    backbone_total = sum(p.numel() for p in pristine.values())
    own = method.own_parameters()
    backbone_ids = {id(p) for p in pristine.values()}
    added = [p for p in own.values() if id(p) not in backbone_ids]
    distinct: dict[int, nn.Parameter] = {id(p): p for p in [*pristine.values(), *own.values()]}
    groups = {g: sum(p.numel() for p in ps) for g, ps in method.param_groups().items()}
    return ParamCount(
        backbone_name=str(backbone_name),
        method_name=method_cfg.name,
        method_config=to_dict(method_cfg),
        backbone_cnn=cnn,
        backbone_transformer=backbone_total - cnn,
        backbone_total=backbone_total,
        backbone_trainable=sum(p.numel() for p in pristine.values() if p.requires_grad),
        method=sum(p.numel() for p in own.values() if p.requires_grad),
        method_added=sum(p.numel() for p in added),
        groups=groups,
        total=backbone_total + sum(p.numel() for p in added),
        trainable=sum(p.numel() for p in distinct.values() if p.requires_grad),
    )


def count_for(backbone_name: str | Path, method: str, settings: dict[str, Any] | None = None) -> ParamCount:
    """:func:`count_parameters` with the method config parsed from ``{key: value}`` (unknown key: error)."""
    cfg = parse_named(METHODS, {"name": method, **(settings or {})}, "method")
    return count_parameters(backbone_name, cfg)
