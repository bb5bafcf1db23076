"""Named backbone presets: the published architectures (so parameter counts match the real checkpoints)
with their hub ids, plus tiny random configs for tests.

A preset builds a config alone (random init); ``hub_id`` is what ``from_pretrained`` would load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    family: str
    hub_id: str | None
    config: dict[str, Any] = field(default_factory=dict)  # overrides of the transformers config defaults


_LARGE = dict(
    hidden_size=1024,
    num_hidden_layers=24,
    num_attention_heads=16,
    intermediate_size=4096,
    feat_extract_norm="layer",
    do_stable_layer_norm=True,
    conv_bias=True,
)
# Tiny: 2 layers, hidden 32, a 3-layer CNN with the real total stride of 320 samples (20 ms frames).
_TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(32, 32, 32),
    conv_kernel=(10, 8, 4),
    conv_stride=(5, 8, 8),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    feat_proj_dropout=0.0,
    layerdrop=0.0,
    mask_time_prob=0.0,
)

PRESETS: dict[str, Preset] = {
    "wavlm-base": Preset("wavlm", "microsoft/wavlm-base"),
    "wavlm-base-plus": Preset("wavlm", "microsoft/wavlm-base-plus"),
    "wavlm-large": Preset("wavlm", "microsoft/wavlm-large", _LARGE),
    "hubert-base": Preset("hubert", "facebook/hubert-base-ls960"),
    "hubert-large": Preset("hubert", "facebook/hubert-large-ll60k", _LARGE),
    "wav2vec2-base": Preset("wav2vec2", "facebook/wav2vec2-base"),
    "wav2vec2-large": Preset("wav2vec2", "facebook/wav2vec2-large-lv60", _LARGE),
    "tiny-wavlm": Preset("wavlm", None, dict(_TINY, num_buckets=32, max_bucket_distance=64)),
    "tiny-hubert": Preset("hubert", None, _TINY),
    "tiny-wav2vec2": Preset("wav2vec2", None, _TINY),
}


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise KeyError(f"unknown backbone preset {name!r}; valid presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
