"""Typed configuration: dataclasses validated with OmegaConf, YAML files and ``a.b=c`` overrides.

Rules (docs/train.md, "Config reference"): field names = YAML keys = CLI override paths; an unknown
key or a value of the wrong type is a :class:`ConfigError` naming the key and listing the valid ones;
derived values are computed by the code that needs them and never written back into a config.

Sections whose fields depend on a registered name (``method``, ``backend``, ``loss``) are parsed with
:func:`parse_named`: the ``name`` key selects the registry entry and its config dataclass validates the
rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from spkpeft.registry import Registry

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names it and says what would be right."""


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def parse(cls: type[T], data: Mapping[str, Any] | None, where: str = "") -> T:
    """Validate ``data`` against dataclass ``cls`` and return an instance.

    Unknown keys and wrong types raise :class:`ConfigError` with the dotted path of the key.
    Nested dataclass fields are validated recursively by OmegaConf.
    """
    data = _section(data, where or cls.__name__)
    prefix = f"{where}." if where else ""
    valid = field_names(cls)
    for key in data:
        if key not in valid:
            raise ConfigError(
                f"unknown config key {prefix}{key!r}; valid keys in {where or cls.__name__}: "
                f"{', '.join(valid)}"
            )
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), data)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except ConfigKeyError as e:
        raise ConfigError(f"{prefix}{e.full_key}: unknown key; valid keys: {', '.join(valid)}") from None
    except OmegaConfBaseException as e:
        msg = str(e).split("\n")[0]
        key = getattr(e, "full_key", None)
        raise ConfigError(f"invalid value for {prefix}{key}: {msg}") from None


def _section(data: Any, where: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{where} must be a section (key: value pairs), got {data!r}; set one of its keys with "
            f"{where}.KEY=VALUE"
        )
    return dict(data)


def parse_named(registry: Registry, data: Mapping[str, Any] | None, where: str) -> Any:
    """Parse a section like ``{name: unipet, prompt_length: 30}`` with the named entry's config class.

    The returned dataclass has a ``name`` field (every registered config class must declare one).
    """
    data = _section(data, where)
    if "name" not in data:
        raise ConfigError(f"{where}.name is required; valid names: {', '.join(registry.names())}")
    name = data["name"]
    if name not in registry:
        raise ConfigError(f"{where}.name={name!r} is unknown; valid names: {', '.join(registry.names())}")
    cls = registry.config_cls(name)
    if cls is None:
        raise ConfigError(f"{registry.kind} {name!r} takes no config")
    return parse(cls, data, where)


def to_dict(obj: Any) -> Any:
    """A dataclass (possibly nested) as plain dicts/lists, ready for YAML or JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``a.b=c`` overrides (values parsed as YAML scalars/lists) to a nested dict; returns a copy."""
    out = _deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.path=value")
        path, raw = item.split("=", 1)
        keys = [k for k in path.strip().split(".") if k]
        if not keys:
            raise ConfigError(f"override {item!r} has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(
                f"override {item!r}: the value {raw!r} is not valid YAML ({problem}); quote it or close its "
                "brackets, e.g. key=[1, 2]"
            ) from None
        node = out
        for k in keys[:-1]:
            nxt = node.get(k)
            if nxt is None:
                nxt = node[k] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {item!r}: {k!r} is not a section")
            node = nxt
        node[keys[-1]] = value
    return out


def save_yaml(obj: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(obj), sort_keys=False))


def _deepcopy(d: Any) -> Any:
    if isinstance(d, Mapping):
        return {k: _deepcopy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deepcopy(v) for v in d]
    return d
