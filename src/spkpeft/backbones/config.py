"""The ``backbone`` section of an experiment config: which pre-trained model to load and how."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class BackboneConfig:
    """``name_or_path``: a preset (random init), a local ``save_pretrained`` directory or a hub id.

    ``config_overrides`` go to the transformers config (e.g. ``{hidden_dropout: 0.0}``).
    ``normalize_wav``: per-utterance waveform normalisation (None: on for large models, as fairseq).
    ``train_mode`` false keeps the transformers model in eval mode while training (no dropout inside the
    pre-trained encoder; the method's and back-end's own modules still train normally).
    ``init_seed`` seeds the random initialisation of preset backbones (default: ``train.seed``).
    ``attn_implementation``: ``sdpa`` (``F.scaled_dot_product_attention``, every family) or ``eager``.
    """

    name_or_path: str = "tiny-wavlm"
    config_overrides: dict[str, Any] = field(default_factory=dict)
    normalize_wav: bool | None = None
    train_mode: bool = False
    init_seed: int | None = None
    attn_implementation: str = "sdpa"
