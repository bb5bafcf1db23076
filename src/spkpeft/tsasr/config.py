"""The typed config of a target-speaker ASR run (YAML keys = field names = CLI override paths)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spkpeft.config import ConfigError, apply_overrides, load_yaml, parse
from spkpeft.train import experiment
from spkpeft.train.config import OptimConfig
from spkpeft.tsasr.methods import TSASR_METHODS, declared_groups
from spkpeft.tsasr.model_config import ModelConfig

SOURCES = ("melstats", "file", "verifier")
RECIPES = experiment.RECIPES / "tsasr"


def list_recipes() -> list[str]:
    """Names of the TS-ASR recipes shipped with the package (``spkpeft/configs/tsasr/*.yaml``)."""
    return experiment.list_recipes(RECIPES)


def recipe_path(name_or_path: str | Path) -> Path:
    """A YAML path as given, else a shipped TS-ASR recipe by name (``tsasr_real_whisper_tiny_prompt``)."""
    return experiment.recipe_path(name_or_path, RECIPES)


@dataclass
class SpeakerSection:
    """Where enrolment embeddings come from: ``melstats`` (training-free stand-in, see embeddings.py),
    ``file`` (``path`` = .npz/.safetensors keyed by enrolment utterance id) or ``verifier``
    (``path`` = a spkpeft speaker model directory, through ``SpeakerVerifier.embed``)."""

    source: str = "melstats"
    path: str | None = None
    n_mels: int = 40


@dataclass
class DataSection:
    """Mixture manifests written by ``spkpeft tsasr simulate`` (or the same fields from a real corpus)."""

    train: str = ""
    valid: str | None = None
    cache: bool = False  # keep decoded audio and embeddings in memory (small corpora)
    # train on each mixture with both of its speakers as the target in the same batch (the manifest must
    # hold both: spkpeft tsasr simulate --both-targets); the audio alone then cannot tell which
    # transcript is wanted, only the enrolment can
    pair_targets: bool = False


@dataclass
class OptimSection(OptimConfig):
    """The speaker trainer's ``optim`` section (:mod:`spkpeft.train.optim`: ``lr`` per parameter group
    ``prompt``, ``lora``, ``backbone`` or ``default``) with TS-ASR's defaults, AdamW 1e-4 with linear
    warm-up and linear decay to 0, plus the loop's own fields. A plain number for ``lr`` (the form of
    earlier versions and saved runs) means ``{default: number}``."""

    optimizer: str = "adamw"
    lr: dict[str, float] = field(default_factory=lambda: {"default": 1e-4})
    weight_decay: float = 0.01
    schedule: str = "linear"
    final_lr_ratio: float = 0.0
    epochs: int = 10
    batch_size: int = 8
    max_steps: int | None = None  # stop early (smoke runs); None = epochs
    grad_clip: float = 1.0


@dataclass
class TSASRConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    speaker: SpeakerSection = field(default_factory=SpeakerSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    seed: int = 0
    mixed_precision: str = "no"  # no | fp16 | bf16 (accelerate)
    log_every: int = 50
    checkpoint_every: int = 0  # optimiser steps between checkpoints (0: at each epoch's end only)
    out_dir: str = "runs/tsasr"


def _lr_as_groups(raw: dict[str, Any]) -> dict[str, Any]:
    """``optim.lr: 1e-4`` (earlier versions, saved runs, ``--set optim.lr=1e-3``) -> ``{default: 1e-4}``."""
    optim = raw.get("optim")
    lr = optim.get("lr") if isinstance(optim, dict) else None
    if isinstance(lr, str):  # YAML reads 1e-3 (no dot) as a string; a float field would take it
        try:
            lr = float(lr)
        except ValueError:
            return raw  # parse() names the key and the type it wants
    if isinstance(lr, (int, float)) and not isinstance(lr, bool):
        return {**raw, "optim": {**optim, "lr": {"default": float(lr)}}}
    return raw


def _lora_targets(raw: dict[str, Any]) -> dict[str, Any]:
    """``model.lora.target_modules: [q_proj, v_proj]`` (earlier versions, saved runs) -> ``targets: [q, v]``
    (the names of :mod:`spkpeft.methods.lora`); a leaf name it does not know is kept, for parse to name."""
    model = raw.get("model")
    lora = model.get("lora") if isinstance(model, dict) else None
    if not isinstance(lora, dict) or "target_modules" not in lora:
        return raw
    short = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "out_proj": "o"}
    lora = {k: v for k, v in lora.items() if k != "target_modules"} | {
        "targets": [short.get(t, t) for t in lora["target_modules"]]
    }
    return {**raw, "model": {**model, "lora": lora}}


def _earlier_forms(raw: dict[str, Any]) -> dict[str, Any]:
    """Configs written by earlier versions (saved runs) in today's form."""
    return _lora_targets(_lr_as_groups(raw))


def load_config(
    path: str | Path | None, overrides: list[str] = (), data: dict[str, Any] | None = None
) -> TSASRConfig:
    """YAML file or shipped recipe name (or ``data``) + ``a.b=c`` overrides -> :class:`TSASRConfig`."""
    raw = _earlier_forms(load_yaml(recipe_path(path)) if path is not None else dict(data or {}))
    cfg = parse(TSASRConfig, _earlier_forms(apply_overrides(raw, list(overrides))))
    cfg.optim.validate("optim")
    if cfg.model.method not in TSASR_METHODS:
        raise ConfigError(
            f"model.method={cfg.model.method!r} is unknown; valid: {', '.join(TSASR_METHODS.names())}"
        )
    groups = declared_groups()
    unknown = sorted(set(cfg.optim.lr) - {*groups, "default"})
    if unknown:
        raise ConfigError(
            f"optim.lr has unknown parameter group(s) {unknown}; valid: {', '.join(groups)}, default"
        )
    if cfg.speaker.source not in SOURCES:
        raise ConfigError(f"speaker.source={cfg.speaker.source!r} is unknown; valid: {', '.join(SOURCES)}")
    if cfg.mixed_precision not in ("no", "fp16", "bf16"):
        raise ConfigError(f"mixed_precision={cfg.mixed_precision!r}; valid: no, fp16, bf16")
    return cfg
