"""``ModuleMethod``: the common base of methods that own their parameters as an ``nn.Module`` and hook
into a :class:`~spkpeft.backbones.SpeechBackbone` (adapters, prompts, gates).

The backbone is referenced, not registered as a submodule, so ``method.parameters()`` are the method's
own and a model that holds both never counts the backbone twice. Parameter names are prefixed with the
method's registered name (``adapter.adapters.3.down.weight``), which is what :mod:`spkpeft.methods.io`
saves.
"""

from __future__ import annotations

import torch
from torch import nn

from spkpeft.backbones.backbone import BackboneHook, SpeechBackbone
from spkpeft.methods.base import MergeNotSupported, MethodConfig


class ModuleMethod(nn.Module, BackboneHook):
    """Base for hooked methods. Subclasses build their modules, then call :meth:`attach`."""

    merge_reason = "it adds modules beside the backbone's weights that cannot be folded into them"

    def __init__(self, cfg: MethodConfig, backbone: SpeechBackbone) -> None:
        super().__init__()
        self.cfg, self.name = cfg, cfg.name
        self._backbone = [backbone]  # a list, so nn.Module does not register the backbone
        self._handle = None

    @property
    def backbone(self) -> SpeechBackbone:
        return self._backbone[0]

    def attach(self) -> None:
        """Freeze the backbone and register this method's hooks (one hooked method per backbone)."""
        bb = self.backbone
        if bb.num_hooks:
            raise ValueError(
                f"the backbone already carries {bb.num_hooks} method hook(s); build {self.name!r} on a "
                f"fresh backbone or call .detach() on the other method first"
            )
        bb.requires_grad_(False)
        self._handle = bb.add_hook(self)

    def detach(self) -> None:
        """Remove this method's hooks from the backbone (the backbone is then plain again)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def own_parameters(self) -> dict[str, nn.Parameter]:
        return {f"{self.name}.{n}": p for n, p in self.named_parameters()}

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        raise NotImplementedError

    def adapt_aggregate(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return x

    def merge(self) -> nn.Module:
        raise MergeNotSupported(f"method {self.name!r} cannot be merged: {self.merge_reason}")

    def stats(self) -> dict[str, float]:
        return {}

    def extra_repr(self) -> str:
        n = sum(p.numel() for p in self.parameters())
        return f"name={self.name!r}, params={n:,}"
