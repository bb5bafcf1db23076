"""Build or load a bare transformers speech encoder: a preset (random init), a local directory or a hub id.

A directory may hold more than the encoder: a Whisper directory written by
``WhisperForConditionalGeneration`` or ``WhisperModel.save_pretrained`` loads as its ``WhisperEncoder``
(the family's ``checkpoint_prefixes`` are stripped from the weight names, the decoder's weights are left
unread), and every encoder weight must be there.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
import transformers

from spkpeft.backbones.families import FAMILIES, FamilySpec, family_of_model_type, family_spec
from spkpeft.backbones.faster_whisper import resolve_whisper_source
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
    memory at all, for parameter counting). Directories and hub ids go through ``from_pretrained`` with
    ``trust_remote_code=False``: code shipped with a model (``auto_map``) is never run, and transformers
    never asks whether to run it.
    """
    name = resolve_whisper_source(name_or_path)  # faster-whisper dirs, whisper-tiny.en -> converted cache
    if name in PRESETS:
        cfg, spec = build_config(name, **config_overrides)
        ctx = torch.device(device) if device is not None else torch.device("cpu")
        with ctx:
            model = spec.model_class()(cfg)
        log.info("built preset %s (%s) with random weights", name, spec.model_cls)
        return model, spec
    path = Path(name)
    if path.exists() and not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} has no config.json: not a transformers model directory")
    try:
        cfg = transformers.AutoConfig.from_pretrained(name, trust_remote_code=False, **config_overrides)
    except ValueError as e:
        if "trust_remote_code" not in str(e):
            raise
        raise ValueError(
            f"backbone {name!r} needs its own Python code (config.json auto_map, model_type not built into "
            "transformers); spkpeft never runs code from a model directory. Supported families: "
            f"{', '.join(FAMILIES.names())}"
        ) from None
    except OSError as e:
        raise FileNotFoundError(
            f"cannot load backbone {name!r}: not a preset ({', '.join(sorted(PRESETS))}), not a local "
            f"model directory, and not reachable as a hub id ({e.__class__.__name__}). A hub id needs the "
            "network or a copy in the Hugging Face cache (HF_HUB_OFFLINE=1 allows the cache only): "
            f"pre-download it where there is network (`hf download {name}`), or save it with "
            "save_pretrained to a directory and give that directory as backbone.name_or_path"
        ) from None
    spec = family_of_model_type(cfg.model_type)
    model = _from_pretrained(spec, name, cfg)
    if device is not None:
        model = model.to(device)
    log.info("loaded %s from %s", spec.model_cls, name)
    return model, spec


def _from_pretrained(spec: FamilySpec, name: str, cfg: transformers.PretrainedConfig) -> torch.nn.Module:
    """``from_pretrained`` of the family's encoder class; with ``checkpoint_prefixes``, the encoder part
    of a whole-model checkpoint, refusing one that lacks any encoder weight."""
    cls = spec.model_class()
    if not spec.checkpoint_prefixes:
        return cls.from_pretrained(name, config=cfg, trust_remote_code=False)
    mapping = {f"^{re.escape(p)}": "" for p in spec.checkpoint_prefixes}
    # the rest of a whole-model checkpoint (e.g. Whisper's decoder) is skipped on purpose: keep
    # transformers' load report of those "unexpected" keys out of the log; missing keys are checked below
    tl = transformers.utils.logging
    verbosity, bars = tl.get_verbosity(), tl.is_progress_bar_enabled()
    tl.set_verbosity_error()
    tl.disable_progress_bar()
    try:
        model, info = cls.from_pretrained(
            name, config=cfg, key_mapping=mapping, output_loading_info=True, trust_remote_code=False
        )
    finally:
        tl.set_verbosity(verbosity)
        if bars:
            tl.enable_progress_bar()
    missing = sorted(info["missing_keys"])
    if missing:
        raise ValueError(
            f"{name}: the checkpoint lacks {len(missing)} {spec.name} encoder weight(s), e.g. {missing[:3]}; "
            f"expected a {cls.__name__} or a whole model keeping it under "
            f"{' or '.join(spec.checkpoint_prefixes)}"
        )
    return model
