"""The shipped TS-ASR recipes (``spkpeft/configs/tsasr/``) load by name and say what they claim."""

from __future__ import annotations

import pytest

from spkpeft.config import ConfigError
from spkpeft.tsasr.config import list_recipes, load_config

REAL = {"prompt": "prompt", "lora": "lora", "full": "full", "frozen": "frozen"}


@pytest.mark.parametrize("name", list_recipes())
def test_every_recipe_loads(name: str) -> None:
    cfg = load_config(name)
    assert cfg.model.whisper


def test_every_registered_method_has_a_real_recipe() -> None:
    from spkpeft.tsasr.methods import TSASR_METHODS

    assert set(REAL.values()) == set(TSASR_METHODS.names())
    assert {f"tsasr_real_whisper_tiny_{s}" for s in REAL} <= set(list_recipes())
    assert {"tsasr_small", "tsasr_libri2mix_large_v2"} <= set(list_recipes())


@pytest.mark.parametrize("suffix,method", sorted(REAL.items()))
def test_real_whisper_tiny_recipes(suffix: str, method: str) -> None:
    cfg = load_config(f"tsasr_real_whisper_tiny_{suffix}", ["optim.max_steps=7"])
    assert cfg.model.whisper == "whisper-tiny.en" and cfg.model.method == method
    assert cfg.model.window_seconds == 6 and cfg.optim.max_steps == 7
    if method == "lora":
        assert cfg.model.lora.r == 4 and cfg.model.lora.targets == ["q", "v"]
    if method == "prompt":
        assert cfg.model.prompts.reparam and cfg.model.prompts.length == 16


def test_unknown_recipe_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="tsasr_real_whisper_tiny_lora"):
        load_config("no_such_recipe")
