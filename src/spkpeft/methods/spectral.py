"""SpectralFT (Li, Mak et al., arXiv 2501.03829): LoRA-style updates of the principal singular vectors of
W_q and W_k in every Transformer layer. The layer maths is in :mod:`spkpeft.methods.spectral_layer`.

Paper defaults: targets q, k; k = 256 principal triplets; r = 16; alpha = r (scale 1, the released code
has no scaling); the minor part W_m is dropped (``keep_residual: false``, the paper's best row of
Table III). Trainable count on WavLM-Large: 24 layers x 2 matrices x 2 (1024*16 + 16*256) = 1,966,080.

Only the factors B_U, A_U, B_V, A_V are the method's parameters. The frozen U_p, S_p, V_p are recomputed
from the backbone when the method is built (float64 SVD, canonical signs), so a saved method loads onto
a freshly loaded backbone; :meth:`SpectralMethod.extra_state` carries the S_p checksums so a different
backbone is detected (:meth:`SpectralMethod.check_extra_state`).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import torch
from torch import nn

from spkpeft.backbones.projections import restore_attention_classes, route_projections_through_modules
from spkpeft.methods.base import METHODS, MethodConfig
from spkpeft.methods.checksums import compare_checksums
from spkpeft.methods.spectral_layer import SpectralLinear

log = logging.getLogger(__name__)


@dataclass
class SpectralConfig(MethodConfig):
    """SpectralFT: tune the top-k singular vectors of the target projections with rank-r updates."""

    GROUPS = ("spectral",)

    name: str = "spectral"
    k: int = 256
    r: int = 16
    alpha: float | None = None  # None = r (scale 1)
    targets: list[str] = field(default_factory=lambda: ["q", "k"])
    keep_residual: bool = False


def _parent_and_leaf(root: nn.Module, dotted: str) -> tuple[nn.Module, str]:
    parent, _, leaf = dotted.rpartition(".")
    return (root.get_submodule(parent) if parent else root), leaf


def _check(cfg: SpectralConfig) -> None:
    for key in ("r", "k"):
        if getattr(cfg, key) < 1:
            raise ValueError(f"spectral.{key} must be >= 1, got {getattr(cfg, key)}")
    if not cfg.targets:
        raise ValueError("spectral.targets is empty; choose from q, k, v, o")


def target_paths(backbone: nn.Module, targets: list[str]) -> list[str]:
    """Dotted paths (in ``backbone.model``) of the target projections of every layer, layer-major."""
    spec = backbone.spec
    spec.proj_names(tuple(targets))  # validates the names
    table = {"q": spec.q_proj, "k": spec.k_proj, "v": spec.v_proj, "o": spec.out_proj}
    n = len(backbone.model.get_submodule(spec.layers))
    return [f"{spec.layers}.{i}.{table[t]}" for i in range(n) for t in targets]


class SpectralMethod:
    """SpectralFT layers swapped in place for the target projections of ``backbone.model``."""

    adapts_aggregate = False  # adapt_aggregate is the identity

    def __init__(self, cfg: SpectralConfig, backbone: nn.Module) -> None:
        _check(cfg)
        self.name, self.cfg, self.backbone, self.merged = "spectral", cfg, backbone, False
        model = backbone.model
        model.requires_grad_(False)
        route_projections_through_modules(model)
        paths = target_paths(backbone, cfg.targets)
        log.info("spectral: float64 SVD (CPU) of %d matrices", len(paths))
        self.layers: dict[str, SpectralLinear] = {p: self._wrap(model, p) for p in paths}
        n = sum(p.numel() for p in self.own_parameters().values())
        log.info("spectral: %d matrices, k=%d r=%d, %d trainable parameters", len(paths), cfg.k, cfg.r, n)

    def _wrap(self, model: nn.Module, path: str) -> SpectralLinear:
        """Replace the ``nn.Linear`` at ``path`` by its :class:`SpectralLinear`; returns the new layer."""
        cfg = self.cfg
        parent, leaf = _parent_and_leaf(model, path)
        base = getattr(parent, leaf)
        if not isinstance(base, nn.Linear):
            raise TypeError(f"spectral: {path} is {type(base).__name__}, expected nn.Linear")
        cap = min(base.weight.shape)
        if cfg.k > cap and not self._warned:
            log.warning("spectral: k=%d exceeds min(out, in)=%d of %s; using k=%d", cfg.k, cap, path, cap)
            self._warned = True
        alpha = float(cfg.r if cfg.alpha is None else cfg.alpha)
        layer = SpectralLinear(base, k=min(cfg.k, cap), r=cfg.r, alpha=alpha, keep_residual=cfg.keep_residual)
        setattr(parent, leaf, layer)
        return layer

    _warned: bool = False

    def own_parameters(self) -> dict[str, nn.Parameter]:
        if self.merged:
            raise RuntimeError("spectral was merged in place: it has no separate parameters any more")
        return {
            f"spectral.{path}.{n}": p
            for path, layer in self.layers.items()
            for n, p in layer.named_parameters()
            if not n.startswith("base_layer.")
        }

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"spectral": list(self.own_parameters().values())}

    def adapt_aggregate(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return x

    def extra_state(self) -> dict[str, float]:
        """Checksums of every target's S_p (path -> sum of singular values), to save beside the factors."""
        return {path: layer.checksum for path, layer in self.layers.items()}

    def check_extra_state(self, state: dict[str, float]) -> None:
        """Raise ValueError when the S_p of this backbone differ from those the method was saved with."""
        compare_checksums("spectral", "singular values", state, self.extra_state())

    def merge(self, inplace: bool = False) -> nn.Module:
        """The transformers model with each W' folded into a plain ``nn.Linear`` (zero inference overhead).

        By default a merged *copy* is returned and the live model is untouched (costs one model's memory);
        ``inplace=True`` swaps the live model's layers and marks the method merged (``own_parameters``
        then raises).
        """
        if self.merged:
            raise RuntimeError("spectral is already merged in place")
        model = self.backbone.model
        if not inplace:
            model = copy.deepcopy(model)
        for path in self.layers:
            parent, leaf = _parent_and_leaf(model, path)
            setattr(parent, leaf, getattr(parent, leaf).merged_linear())
        restore_attention_classes(model)
        if inplace:
            self.merged = True
        return model

    def stats(self) -> dict[str, float]:
        return {}


@METHODS.register("spectral", config_cls=SpectralConfig)
def build_spectral(cfg: SpectralConfig, backbone: nn.Module) -> SpectralMethod:
    """SpectralFT: low-rank updates of the principal singular vectors of W_q, W_k."""
    return SpectralMethod(cfg, backbone)
