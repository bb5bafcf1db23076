"""The experiment config: one typed dataclass per YAML section, loaded with ``a.b=c`` overrides.

::

    backbone: {name_or_path: wavlm-base-plus}
    method:   {name: unipet, ...}          # parsed with the METHODS entry's config class
    backend:  {name: linear, ...}          # BACKENDS
    loss:     {name: aam, margin: 0.2, ...}  # LOSSES
    data:     {...}                        # spkpeft.data.config.DataConfig
    optim:    {optimizer: adam, lr: {adapter: 1e-4, backend: 5e-4, default: 1e-3}, ...}
    train:    {batch_size: 64, epochs: 10, ...}
    stages:   [{name: frozen, epochs: 40, trainable: [backend, loss]}, {name: joint, ...}]
    eval:     {manifest: ..., trials: [...], top_k: 300}  # spkpeft.eval.config.RunEvalConfig

Validation never touches the file system: recipes name corpora that need not exist on this machine; the
trainer checks paths when it starts (:func:`check_paths`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spkpeft.backbones.config import BackboneConfig
from spkpeft.config import ConfigError, apply_overrides, load_yaml, parse, parse_named, to_dict
from spkpeft.data.config import DataConfig
from spkpeft.eval.config import RunEvalConfig
from spkpeft.train.config import OptimConfig, TrainConfig

if TYPE_CHECKING:
    from spkpeft.methods.base import MethodConfig
    from spkpeft.model import SpeakerModel


@dataclass
class StageConfig:
    """One training stage; every field left empty inherits the top-level section.

    ``method`` replaces the method section (allowed only when the previous stage's method trains nothing,
    e.g. ``frozen`` -> ``full``); ``trainable`` lists the parameter groups to train (others frozen, e.g.
    ``[backend, loss]``); ``batch_size`` replaces ``train.batch_size`` (e.g. smaller for 6 s crops);
    ``optim``/``loss``/``data`` are partial sections merged over the top-level ones
    (e.g. ``loss: {margin: 0.5}``, ``data: {crop_seconds: 6}``). The margin ramps linearly from 0 at
    ``margin_warmup_start`` to its value at ``margin_warmup_end`` (fractions of the stage's steps).
    """

    name: str = ""
    epochs: int | None = None
    max_steps: int | None = None
    batch_size: int | None = None
    method: dict[str, Any] | None = None
    trainable: list[str] | None = None
    optim: dict[str, Any] = field(default_factory=dict)
    loss: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    margin_warmup_start: float = 0.0
    margin_warmup_end: float = 0.0


@dataclass
class ExperimentConfig:
    """The whole experiment; ``method``/``backend``/``loss`` are the registry entries' config classes."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    method: Any = None
    backend: Any = None
    loss: Any = None
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    stages: list[StageConfig] = field(default_factory=list)
    eval: RunEvalConfig = field(default_factory=RunEvalConfig)


@dataclass
class Stage:
    """A stage with every section resolved (what the trainer runs)."""

    index: int
    name: str
    method: Any
    trainable: list[str] | None
    optim: OptimConfig
    loss: Any
    data: DataConfig
    epochs: int
    max_steps: int
    batch_size: int
    margin_warmup_start: float
    margin_warmup_end: float


SECTIONS = [f.name for f in dataclasses.fields(ExperimentConfig)]


def _registries() -> tuple[Any, Any, Any]:
    from spkpeft.backends import BACKENDS
    from spkpeft.losses import LOSSES
    from spkpeft.methods import METHODS

    return METHODS, BACKENDS, LOSSES


def experiment_from_dict(data: Mapping[str, Any]) -> ExperimentConfig:
    """Validate a nested dict (a loaded YAML) into an :class:`ExperimentConfig`, stages included."""
    unknown = [k for k in data if k not in SECTIONS]
    if unknown:
        raise ConfigError(f"unknown config section(s) {unknown}; valid sections: {', '.join(SECTIONS)}")
    methods, backends, losses = _registries()
    stages_raw = data.get("stages") or []
    if not isinstance(stages_raw, list):
        raise ConfigError(f"stages must be a list of stage sections, got {type(stages_raw).__name__}")
    cfg = ExperimentConfig(
        method=parse_named(methods, data.get("method"), "method"),
        backend=parse_named(backends, data.get("backend"), "backend"),
        loss=parse_named(losses, data.get("loss"), "loss"),
        backbone=parse(BackboneConfig, data.get("backbone"), "backbone"),
        data=_parse_data(data.get("data"), "data"),
        optim=parse(OptimConfig, data.get("optim"), "optim"),
        train=parse(TrainConfig, data.get("train"), "train"),
        stages=[parse(StageConfig, s, f"stages[{i}]") for i, s in enumerate(stages_raw)],
        eval=parse(RunEvalConfig, data.get("eval"), "eval"),
    )
    cfg.optim.validate()
    cfg.train.validate()
    resolve_stages(cfg)  # validates every stage's merged sections
    return cfg


RECIPES = Path(__file__).resolve().parents[1] / "configs"  # spkpeft/configs


def list_recipes(folder: Path = RECIPES) -> list[str]:
    """Names of the recipes shipped with the package (``spkpeft/configs/*.yaml``, or another ``folder``)."""
    return sorted(p.stem for p in folder.glob("*.yaml"))


def recipe_path(name_or_path: str | Path, folder: Path = RECIPES) -> Path:
    """A YAML path as given, else a recipe of ``folder`` by name (``tiny``, ``configs/tiny.yaml``)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    cand = folder / (p.name if p.suffix == ".yaml" else f"{p.name}.yaml")
    if cand.is_file():
        return cand
    raise ConfigError(
        f"config {str(name_or_path)!r} is neither a file nor a recipe; "
        f"recipes: {', '.join(list_recipes(folder))}"
    )


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Load a YAML file or shipped recipe, apply ``a.b=c`` overrides, validate. Data paths are not
    checked here (the trainer does, when it starts)."""
    path = recipe_path(path)
    data = apply_overrides(load_yaml(path), list(overrides))
    try:
        return experiment_from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _parse_data(data: Mapping[str, Any] | None, where: str) -> DataConfig:
    try:
        return parse(DataConfig, data, where)
    except ConfigError:
        raise
    except ValueError as e:  # DataConfig validates itself in __post_init__ ("data.x must ...")
        msg = str(e)
        msg = where + msg[4:] if msg.startswith("data.") else f"{where}: {msg}"
        raise ConfigError(msg) from None


def _override(cls: type, base: Any, over: Mapping[str, Any], where: str) -> Any:
    if not over:
        return base
    merged = _merge(to_dict(base), over)
    return _parse_data(merged, where) if cls is DataConfig else parse(cls, merged, where)


def resolve_stages(cfg: ExperimentConfig) -> list[Stage]:
    """The stages to run: ``cfg.stages`` with inherited sections filled in (one stage when empty)."""
    methods, _, losses = _registries()
    raw = cfg.stages or [StageConfig(name="main")]
    out: list[Stage] = []
    method = cfg.method
    for i, s in enumerate(raw):
        where = f"stages[{i}]"
        if s.method is not None:
            method = parse_named(methods, s.method, f"{where}.method")
        if s.loss.get("name", cfg.loss.name) != cfg.loss.name:
            raise ConfigError(f"{where}.loss.name cannot change the loss head ({cfg.loss.name!r})")
        optim = _override(OptimConfig, cfg.optim, s.optim, f"{where}.optim")
        optim.validate(f"{where}.optim")
        loss = parse_named(losses, _merge(to_dict(cfg.loss), s.loss), f"{where}.loss") if s.loss else cfg.loss
        if not 0 <= s.margin_warmup_start <= s.margin_warmup_end <= 1:
            raise ConfigError(
                f"{where}: need 0 <= margin_warmup_start ({s.margin_warmup_start}) <= margin_warmup_end "
                f"({s.margin_warmup_end}) <= 1"
            )
        epochs = cfg.train.epochs if s.epochs is None else s.epochs
        max_steps = cfg.train.max_steps if s.max_steps is None else s.max_steps
        batch_size = cfg.train.batch_size if s.batch_size is None else s.batch_size
        if epochs < 1 or max_steps < 0 or batch_size < 1:
            raise ConfigError(
                f"{where}: need epochs >= 1 ({epochs}), max_steps >= 0 ({max_steps}), batch_size >= 1 "
                f"({batch_size})"
            )
        out.append(
            Stage(
                index=i,
                name=s.name or f"stage{i + 1}",
                method=method,
                trainable=s.trainable,
                optim=optim,
                loss=loss,
                data=_override(DataConfig, cfg.data, s.data, f"{where}.data"),
                epochs=epochs,
                max_steps=max_steps,
                batch_size=batch_size,
                margin_warmup_start=s.margin_warmup_start,
                margin_warmup_end=s.margin_warmup_end,
            )
        )
    return out


def build_model(cfg: ExperimentConfig, method: MethodConfig | None = None) -> SpeakerModel:
    """The speaker model of ``cfg`` (``method`` replaces ``cfg.method``), initialised from
    ``backbone.init_seed``, else ``train.seed`` (see :func:`spkpeft.model.build_speaker_model`)."""
    from spkpeft.model import build_speaker_model

    return build_speaker_model(cfg.backbone, method or cfg.method, cfg.backend, cfg.train.seed)


def experiment_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """The resolved config as plain data (what ``RUN/config.yaml`` holds)."""
    return to_dict(cfg)
