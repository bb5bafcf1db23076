"""Build or load a bare transformers speech encoder: a preset (random init), a local directory or a hub id."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import transformers

from spkpeft.backbones.families import FamilySpec, family_of_model_type, family_spec
from spkpeft.backbones.presets import PRESETS, preset

log = logging.getLogger(__name__)


def build_config(name: str, **overrides: Any) -> tuple[transformers.PretrainedConfig, FamilySpec]:
    """The transformers config of a preset (with ``overrides``) and its family."""
    p = preset(name)
    spec = family_spec(p.family)
    cfg = getattr(transformers, spec.config_cls)(**{**p.config, **overrides})
    return cfg, spec


def load_hf_model(
    name_or_path: str | Path, device: str | torch.device | None = None, **config_overrides: Any
) -> tuple[torch.nn.Module, FamilySpec]:
    """Return ``(model, family)`` for a preset name, a local ``save_pretrained`` directory or a hub id.

    Presets build the published architecture with random weights (``device="meta"`` builds it with no
    memory at all, for parameter counting). Directories and hub ids go through ``from_pretrained``.
    """
    name = str(name_or_path)
    if name in PRESETS:
        cfg, spec = build_config(name, **config_overrides)
        ctx = torch.device(device) if device is not None else torch.device("cpu")
        with ctx:
            model = getattr(transformers, spec.model_cls)(cfg)
        log.info("built preset %s (%s) with random weights", name, spec.model_cls)
        return model, spec
    path = Path(name)
    if path.exists() and not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} has no config.json: not a transformers model directory")
    try:
        cfg = transformers.AutoConfig.from_pretrained(name, **config_overrides)
    except OSError as e:
        raise FileNotFoundError(
            f"cannot load backbone {name!r}: not a preset ({', '.join(sorted(PRESETS))}), not a local "
            f"model directory, and not reachable as a hub id ({e.__class__.__name__}). A hub id needs the "
            "network or a copy in the Hugging Face cache (HF_HUB_OFFLINE=1 allows the cache only): "
            f"pre-download it where there is network (`hf download {name}`), or save it with "
            "save_pretrained to a directory and give that directory as backbone.name_or_path"
        ) from None
    spec = family_of_model_type(cfg.model_type)
    model = getattr(transformers, spec.model_cls).from_pretrained(name, config=cfg)
    if device is not None:
        model = model.to(device)
    log.info("loaded %s from %s", spec.model_cls, name)
    return model, spec
