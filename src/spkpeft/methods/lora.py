"""LoRA, DoRA and PiSSA on the attention projections, through HF peft itself.

All three inject peft ``lora.Linear`` layers in place of the chosen projections (``targets``: ``q``,
``k``, ``v``, ``o``) of every Transformer layer of ``backbone.model``; the backbone is frozen and only the
peft factors train. Per adapted matrix W (out x in) the layer computes
``W x + (alpha / r) B A x`` with A (r x in), B (out x r), B = 0 at start (so the model starts equal to
the frozen backbone).

- ``lora``: plain LoRA (Hu et al.). Default alpha 16 = r, i.e. scale alpha/r = 1. The SpectralFT
  paper's LoRA baseline row (Table I) used alpha/r = 0.1: set ``alpha: 1.6``.
- ``dora``: DoRA (Liu et al.), ``use_dora=True``: adds a trainable magnitude vector (out,) per matrix.
- ``pissa``: PiSSA (Meng et al.), ``init_lora_weights="pissa"``: A, B start as the top-r singular
  triplets of W and the base weight becomes the residual ``W_res = W - (alpha/r) B0 A0``. Saving only the
  factors stays enough: building the method on a freshly loaded original backbone re-derives the same
  ``W_res`` (it does not depend on the singular vectors' signs, so it is reproducible across machines),
  and the saved A, B are loaded on top of it.

The parameter prefix of each method is its name (``lora.``, ``dora.``, ``pissa.``); the peft adapter is
named after the method too, so the three can never collide.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import torch
from peft import LoraConfig
from peft.tuners.lora import LoraModel
from torch import nn

from spkpeft.backbones.projections import restore_attention_classes, route_projections_through_modules
from spkpeft.methods.base import METHODS, MethodConfig
from spkpeft.methods.checksums import compare_checksums, tensor_checksum

log = logging.getLogger(__name__)


@dataclass
class LoraMethodConfig(MethodConfig):
    """LoRA on the attention projections (paper defaults: r 16 on q/k/v)."""

    GROUPS = ("lora",)

    name: str = "lora"
    r: int = 16
    alpha: float = 16.0  # scale alpha / r = 1; the SpectralFT paper's LoRA baseline used 1.6 (scale 0.1)
    targets: list[str] = field(default_factory=lambda: ["q", "k", "v"])
    dropout: float = 0.0


@dataclass
class DoraMethodConfig(LoraMethodConfig):
    """DoRA: LoRA plus a trainable magnitude vector per adapted matrix."""

    name: str = "dora"


@dataclass
class PissaMethodConfig(LoraMethodConfig):
    """PiSSA: LoRA initialised from the principal singular triplets, base weight set to the residual."""

    name: str = "pissa"


def _check(cfg: LoraMethodConfig) -> None:
    if cfg.r < 1:
        raise ValueError(f"{cfg.name}.r must be >= 1, got {cfg.r}")
    if not cfg.targets:
        raise ValueError(f"{cfg.name}.targets is empty; choose from q, k, v, o")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"{cfg.name}.dropout must be in [0, 1), got {cfg.dropout}")


def _weight_checksums(model: nn.Module, leaf_names: list[str]) -> dict[str, float]:
    """Module path -> sum of |W| of every ``nn.Linear`` peft will target (same leaf-name matching), so
    that loading PiSSA factors onto another backbone of the same shape is refused."""
    return {
        n: tensor_checksum(m.weight.abs())
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) and n.rpartition(".")[2] in leaf_names
    }


def _is_meta(model: nn.Module) -> bool:
    return any(p.is_meta for p in model.parameters())


class PeftLoraMethod:
    """A LoRA-family method living inside ``backbone.model`` (peft layers injected in place)."""

    adapts_aggregate = False  # adapt_aggregate is the identity

    def __init__(self, cfg: LoraMethodConfig, backbone: nn.Module, use_dora: bool, init: bool | str) -> None:
        _check(cfg)
        self.name = cfg.name
        self.cfg = cfg
        self.backbone = backbone
        self.merged = False
        model = backbone.model
        model.requires_grad_(False)
        route_projections_through_modules(model)  # WavLM: make the peft layers take effect
        names = backbone.spec.proj_names(tuple(cfg.targets))
        # PiSSA rewrites the base weights from their SVD: fingerprint the originals first.
        self._checksums = _weight_checksums(model, names) if init == "pissa" else {}
        peft_cfg = LoraConfig(
            r=cfg.r,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            target_modules=names,
            use_dora=use_dora,
            init_lora_weights=init,
            bias="none",
        )
        # LoraModel injects into ``model`` in place (it is what peft.inject_adapter_in_model does); we keep
        # the tuner for peft's own merge_and_unload.
        self.tuner = LoraModel(model, peft_cfg, adapter_name=cfg.name)
        self._params = {
            f"{cfg.name}.{n}": p
            for n, p in model.named_parameters()
            if p.requires_grad and f".{cfg.name}." in n and "lora_" in n
        }
        if not self._params:
            raise RuntimeError(
                f"{cfg.name}: peft injected no trainable parameters into {type(model).__name__}"
            )
        log.info(
            "%s: r=%d alpha=%g on %s, %d trainable parameters",
            cfg.name,
            cfg.r,
            cfg.alpha,
            ",".join(cfg.targets),
            sum(p.numel() for p in self._params.values()),
        )

    def own_parameters(self) -> dict[str, nn.Parameter]:
        if self.merged:
            raise RuntimeError(f"{self.name} was merged in place: it has no separate parameters any more")
        return dict(self._params)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"lora": list(self.own_parameters().values())}

    def adapt_aggregate(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return x

    def extra_state(self) -> dict[str, float]:
        """PiSSA: checksums of the original target weights (saved in method.json); {} for LoRA/DoRA."""
        return dict(self._checksums)

    def check_extra_state(self, state: dict[str, float]) -> None:
        """Raise ValueError when this backbone's target weights are not those the method was saved with."""
        compare_checksums(self.name, "weights", state, self._checksums)

    def merge(self, inplace: bool = False) -> nn.Module:
        """The transformers model with ``B A`` (and DoRA's magnitude) folded into plain ``nn.Linear`` weights.

        By default a merged *copy* is returned and the live model keeps training unchanged (the copy costs
        one model's memory). ``inplace=True`` unloads the peft layers from the live model itself and marks
        the method merged: the backbone then runs the merged weights, and ``own_parameters`` raises.
        """
        if self.merged:
            raise RuntimeError(f"{self.name} is already merged in place")
        tuner = self.tuner if inplace else copy.deepcopy(self.tuner)
        with torch.no_grad():
            model = tuner.merge_and_unload(safe_merge=True)
        _clean_merged(model)
        if inplace:
            self.merged = True
        return model

    def stats(self) -> dict[str, float]:
        return {}


def _clean_merged(model: nn.Module) -> None:
    """Strip peft's traces so ``save_pretrained`` writes a plain transformers model."""
    restore_attention_classes(model)
    for attr in ("peft_config", "_hf_peft_config_loaded"):
        if attr in vars(model):
            delattr(model, attr)


@METHODS.register("lora", config_cls=LoraMethodConfig)
def build_lora(cfg: LoraMethodConfig, backbone: nn.Module) -> PeftLoraMethod:
    """LoRA (HF peft) on the attention projections."""
    return PeftLoraMethod(cfg, backbone, use_dora=False, init=True)


@METHODS.register("dora", config_cls=DoraMethodConfig)
def build_dora(cfg: DoraMethodConfig, backbone: nn.Module) -> PeftLoraMethod:
    """DoRA (HF peft, use_dora) on the attention projections."""
    return PeftLoraMethod(cfg, backbone, use_dora=True, init=True)


@METHODS.register("pissa", config_cls=PissaMethodConfig)
def build_pissa(cfg: PissaMethodConfig, backbone: nn.Module) -> PeftLoraMethod:
    """PiSSA (HF peft, init_lora_weights="pissa") on the attention projections."""
    # On the meta device there are no values to decompose: same shapes, plain init.
    init = True if _is_meta(backbone.model) else "pissa"
    return PeftLoraMethod(cfg, backbone, use_dora=False, init=init)
