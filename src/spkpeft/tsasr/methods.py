"""The TS-ASR method extension point: what trains on a frozen Whisper for target-speaker ASR.

``model.method`` names an entry of :data:`TSASR_METHODS` (the toolkit's :class:`~spkpeft.registry.Registry`,
as for speaker methods, back ends and losses). An entry's class (:class:`TSMethodSpec`) declares

- ``GROUPS``: the parameter groups (``optim.lr`` keys) the method trains;
- ``CONDITIONED``: whether the speaker slot and prompts (:class:`~spkpeft.tsasr.prompts.TSPrompts`) are
  attached (every method but ``frozen``);

and its builder adapts Whisper's own weights, returning what trains inside Whisper (``None`` when nothing
does). The LoRA family is not rewritten here: ``lora`` builds the speaker toolkit's peft wrapper
(:mod:`spkpeft.methods.lora`) through the speaker method registry, with the ``whisper`` family's projection
names, so ``model.lora.name`` may be any LoRA-family speaker method (``lora``, ``dora``, ``pissa``).

A new method registers itself here; the config check, the optimiser's groups and the CLI help follow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol

from torch import nn

from spkpeft.registry import Registry

if TYPE_CHECKING:
    from transformers import WhisperForConditionalGeneration

    from spkpeft.tsasr.model_config import ModelConfig


class TSMethodSpec:
    """Class constants of a TS-ASR method (its settings live in ``model.prompts`` and ``model.lora``)."""

    GROUPS: ClassVar[tuple[str, ...]] = ()
    CONDITIONED: ClassVar[bool] = True


class WhisperWeights(Protocol):
    """What a method trains inside Whisper: group name -> parameters (``lora``, ``backbone``)."""

    def param_groups(self) -> dict[str, list[nn.Parameter]]: ...


TSASR_METHODS: Registry = Registry("tsasr method")


def declared_groups() -> tuple[str, ...]:
    """Every parameter group some registered TS-ASR method trains, in registration order."""
    seen: dict[str, None] = {}
    for name in TSASR_METHODS.names():
        seen.update(dict.fromkeys(TSASR_METHODS.config_cls(name).GROUPS))
    return tuple(seen)


def lora_family() -> tuple[str, ...]:
    """The speaker methods ``model.lora.name`` may name: those whose config is a LoRA config."""
    from spkpeft.methods import METHODS
    from spkpeft.methods.lora import LoraMethodConfig

    return tuple(n for n in METHODS.names() if issubclass(METHODS.config_cls(n), LoraMethodConfig))


class _Prompt(TSMethodSpec):
    GROUPS = ("prompt",)


class _Lora(TSMethodSpec):
    GROUPS = ("prompt", "lora")


class _Full(TSMethodSpec):
    GROUPS = ("prompt", "backbone")


class _Frozen(TSMethodSpec):
    CONDITIONED = False


class _WholeWhisper:
    """Full fine-tuning: every Whisper weight trains (group ``backbone``)."""

    def __init__(self, whisper: nn.Module) -> None:
        whisper.requires_grad_(True)
        self.whisper = whisper

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"backbone": [p for p in self.whisper.parameters() if p.requires_grad]}


@TSASR_METHODS.register("prompt", config_cls=_Prompt)
def build_prompt(cfg: ModelConfig, whisper: WhisperForConditionalGeneration) -> None:
    """Prompt tuning (the paper): only the speaker slot and the encoder/decoder prompts train."""
    return None


@TSASR_METHODS.register("lora", config_cls=_Lora)
def build_lora(cfg: ModelConfig, whisper: WhisperForConditionalGeneration) -> WhisperWeights:
    """Speaker slot and prompts plus LoRA (``model.lora``: r 4 on q, v; ``name: dora`` gives DoRA)."""
    from types import SimpleNamespace

    from spkpeft.backbones.families import family_spec
    from spkpeft.methods import METHODS

    lc = cfg.lora
    valid = lora_family()
    if lc.name not in valid:
        raise ValueError(f"model.lora.name={lc.name!r}; valid: {', '.join(valid)}")
    host = SimpleNamespace(model=whisper, spec=family_spec("whisper"))
    return METHODS.build(lc.name, lc, host)


@TSASR_METHODS.register("full", config_cls=_Full)
def build_full(cfg: ModelConfig, whisper: WhisperForConditionalGeneration) -> WhisperWeights:
    """Speaker slot and prompts plus every Whisper weight (the full fine-tuning baseline)."""
    return _WholeWhisper(whisper)


@TSASR_METHODS.register("frozen", config_cls=_Frozen)
def build_frozen(cfg: ModelConfig, whisper: WhisperForConditionalGeneration) -> None:
    """Plain Whisper, no slots (the reference the others are measured against)."""
    return None
