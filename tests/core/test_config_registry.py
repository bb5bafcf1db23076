from dataclasses import dataclass, field

import pytest

from spkpeft.config import ConfigError, apply_overrides, parse, parse_named
from spkpeft.registry import Registry, RegistryError


@dataclass
class Inner:
    lr: float = 1e-3
    groups: list[str] = field(default_factory=lambda: ["a"])


@dataclass
class Outer:
    name: str = "x"
    steps: int = 10
    inner: Inner = field(default_factory=Inner)


def test_parse_typed_and_nested():
    cfg = parse(Outer, {"steps": 5, "inner": {"lr": 0.5}})
    assert isinstance(cfg, Outer) and isinstance(cfg.inner, Inner)
    assert cfg.steps == 5 and cfg.inner.lr == 0.5 and cfg.inner.groups == ["a"]


def test_unknown_key_names_key_and_valid_ones():
    with pytest.raises(ConfigError, match=r"stepz.*valid keys.*steps"):
        parse(Outer, {"stepz": 3}, "train")
    with pytest.raises(ConfigError, match=r"inner.*lrr"):
        parse(Outer, {"inner": {"lrr": 3}})


def test_wrong_type_is_error():
    with pytest.raises(ConfigError, match="steps"):
        parse(Outer, {"steps": "many"})


def test_overrides_parse_yaml_scalars():
    d = apply_overrides({"a": {"b": 1}}, ["a.b=2.5", "a.c=[1, 2]", "d.e=true"])
    assert d == {"a": {"b": 2.5, "c": [1, 2]}, "d": {"e": True}}
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides({}, ["novalue"])


def test_registry_lists_valid_names_and_parse_named():
    reg: Registry = Registry("thing")
    reg.register("one", config_cls=Outer)(lambda cfg: cfg.steps)
    with pytest.raises(RegistryError, match="valid things: one"):
        reg.get("two")
    cfg = parse_named(reg, {"name": "one", "steps": 3}, "method")
    assert reg.build(cfg.name, cfg) == 3
    with pytest.raises(ConfigError, match="valid names: one"):
        parse_named(reg, {"name": "nope"}, "method")
    irregular: Registry = Registry("corpus", "corpora")
    irregular.register("vox")(lambda: 0)
    with pytest.raises(RegistryError, match="unknown corpus 'timit'; valid corpora: vox"):
        irregular.get("timit")
