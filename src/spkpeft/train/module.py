"""What the optimiser sees: the speaker model plus the loss head, with named parameter groups."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from spkpeft.config import ConfigError
from spkpeft.methods import declared_groups
from spkpeft.model import SpeakerModel

TRAINER_GROUPS = ("backend", "loss")
"""The groups :class:`TrainModule` adds to the method's: the back-end and the loss head."""


class TrainModule(nn.Module):
    """``forward(wav (B, S), lengths (B,), labels (B,)) -> LossOutput(loss, logits (B, C))``."""

    def __init__(self, model: SpeakerModel, head: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.head = head
        self.refresh()

    def refresh(self) -> None:
        """Snapshot the method's parameters and groups as its builder left them (call after a method
        switch). Some methods (``full``) report only parameters that currently require grad, and the
        trainer toggles requires_grad per stage, so the live answer would shrink."""
        method = self.model.method
        self._own = dict(method.own_parameters())
        self._method_groups = {k: list(v) for k, v in method.param_groups().items()}
        declared = type(method.cfg).GROUPS
        if undeclared := sorted(set(self._method_groups) - set(declared)):
            raise ValueError(
                f"method {method.name!r} returns parameter group(s) {undeclared} that "
                f"{type(method.cfg).__name__}.GROUPS {declared} does not declare"
            )

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor):  # noqa: ANN201
        return self.head(self.model(wav, lengths), labels)

    def groups(self) -> dict[str, list[nn.Parameter]]:
        """Group name -> parameters: the method's groups, ``backend`` and ``loss``."""
        out = {k: list(v) for k, v in self._method_groups.items()}
        for name in TRAINER_GROUPS:
            if name in out:
                raise ValueError(f"method {self.model.method.name!r} uses the reserved group name {name!r}")
        out["backend"] = list(self.model.backend.parameters())
        out["loss"] = list(self.head.parameters())
        return out

    def known_groups(self) -> set[str]:
        """Every group a stage's model may have: those registered methods declare (``GROUPS``), and
        :data:`TRAINER_GROUPS`; ``optim.lr`` may name any of them."""
        return declared_groups() | set(TRAINER_GROUPS)

    def set_trainable(self, names: Sequence[str] | None, where: str = "trainable") -> list[str]:
        """Train the groups in ``names`` (``None``: all; ``method`` = every method group); freeze the
        rest of the whole module. Returns the trained group names."""
        groups = self.groups()
        method_groups = [g for g in groups if g not in TRAINER_GROUPS]
        chosen: list[str] = []
        for n in list(groups) if names is None else names:
            if n == "method":
                chosen += method_groups
            elif n in groups:
                chosen.append(n)
            else:
                raise ConfigError(
                    f"{where}: unknown parameter group {n!r}; this model's groups: "
                    f"{', '.join([*groups, 'method'])}"
                )
        for p in self.parameters():
            p.requires_grad_(False)
        for n in chosen:
            for p in groups[n]:
                p.requires_grad_(True)
        return chosen

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Everything training can change (for checkpoints): method parameters, back-end and loss-head
        state dicts (buffers such as batch-norm statistics included), whether trainable now or not."""
        out = {f"method/{n}": p.detach() for n, p in self._own.items()}
        out.update({f"backend/{k}": v.detach() for k, v in self.model.backend.state_dict().items()})
        out.update({f"loss/{k}": v.detach() for k, v in self.head.state_dict().items()})
        return {k: v.to("cpu").contiguous().clone() for k, v in out.items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`state_tensors`; a missing or unexpected key raises ``KeyError``."""
        own = self._own
        expected = {f"method/{n}" for n in own}
        expected |= {f"backend/{k}" for k in self.model.backend.state_dict()}
        expected |= {f"loss/{k}" for k in self.head.state_dict()}
        missing, unknown = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        if missing or unknown:
            raise KeyError(
                f"checkpoint does not match this model: missing {missing[:5]}, unexpected {unknown[:5]} "
                "(was it written with another config?)"
            )
        with torch.no_grad():
            for n, p in own.items():
                p.copy_(tensors[f"method/{n}"])
        self.model.backend.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("backend/")})
        self.head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("loss/")})
