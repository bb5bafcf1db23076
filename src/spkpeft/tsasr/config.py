"""The typed config of a target-speaker ASR run (YAML keys = field names = CLI override paths)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spkpeft.config import ConfigError, apply_overrides, load_yaml, parse
from spkpeft.train import experiment
from spkpeft.tsasr.model import ModelConfig

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


@dataclass
class OptimSection:
    lr: float = 1e-4
    weight_decay: float = 0.01
    epochs: int = 10
    batch_size: int = 8
    max_steps: int | None = None  # stop early (smoke runs); None = epochs
    warmup_steps: int = 0
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
    out_dir: str = "runs/tsasr"


def load_config(
    path: str | Path | None, overrides: list[str] = (), data: dict[str, Any] | None = None
) -> TSASRConfig:
    """YAML file or shipped recipe name (or ``data``) + ``a.b=c`` overrides -> :class:`TSASRConfig`."""
    raw = load_yaml(recipe_path(path)) if path is not None else dict(data or {})
    cfg = parse(TSASRConfig, apply_overrides(raw, list(overrides)))
    if cfg.speaker.source not in SOURCES:
        raise ConfigError(f"speaker.source={cfg.speaker.source!r} is unknown; valid: {', '.join(SOURCES)}")
    if cfg.mixed_precision not in ("no", "fp16", "bf16"):
        raise ConfigError(f"mixed_precision={cfg.mixed_precision!r}; valid: no, fp16, bf16")
    return cfg
