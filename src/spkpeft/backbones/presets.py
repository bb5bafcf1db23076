"""Named backbone presets: the published architectures (so parameter counts match the real checkpoints)
with their hub ids, plus tiny random configs for tests. Whisper presets build the encoder
(``WhisperEncoder``) of the published model; large-v3 and large-v3-turbo take 128 mel bins.
``w2v-bert-2.0`` is ``Wav2Vec2BertModel`` (Conformer over stacked fbank).

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


def _whisper(
    d: int, layers: int, heads: int, mels: int = 80, decoder_layers: int | None = None, vocab: int = 51865
):
    """A published Whisper architecture (the decoder only matters to whole-model counts)."""
    return dict(
        d_model=d,
        encoder_layers=layers,
        encoder_attention_heads=heads,
        encoder_ffn_dim=4 * d,
        decoder_layers=layers if decoder_layers is None else decoder_layers,
        decoder_attention_heads=heads,
        decoder_ffn_dim=4 * d,
        num_mel_bins=mels,
        vocab_size=vocab,
    )


# Tiny Whisper: width 32, 2 layers, the real 80 mel bins and 30 s position table (1500 frames).
_TINY_WHISPER = dict(
    _whisper(32, 2, 2),
    vocab_size=64,
    pad_token_id=0,
    bos_token_id=0,
    eos_token_id=0,
    decoder_start_token_id=1,
    max_target_positions=16,
    init_std=0.1,  # 0.02 leaves a width-32 model's attention near uniform: q/k updates would barely show
)

# w2v-BERT 2.0 (facebook/w2v-bert-2.0): transformers' Wav2Vec2BertConfig defaults are the published
# architecture (24 Conformer layers, 1024 wide, 16 heads, FFN 4096, relative_key positions -64..+8,
# depthwise kernel 31, mask_time_prob 0.05 so masked_spec_embed exists as in the checkpoint). Dropouts
# and LayerDrop are set as the checkpoint's config.json sets them (layerdrop is never applied here).
_W2V_BERT: dict[str, Any] = {}
# Tiny w2v-BERT: 2 layers, width 32, the real 160-dim stacked fbank input and relative_key positions.
_TINY_W2V_BERT = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    conv_depthwise_kernel_size=5,
    left_max_position_embeddings=8,
    right_max_position_embeddings=4,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    feat_proj_dropout=0.0,
    conformer_conv_dropout=0.0,
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
    # Whisper presets are the encoders of the published models (hub_id: the whole model).
    "whisper-tiny": Preset("whisper", "openai/whisper-tiny", _whisper(384, 4, 6)),
    "whisper-base": Preset("whisper", "openai/whisper-base", _whisper(512, 6, 8)),
    "whisper-small": Preset("whisper", "openai/whisper-small", _whisper(768, 12, 12)),
    "whisper-medium": Preset("whisper", "openai/whisper-medium", _whisper(1024, 24, 16)),
    "whisper-large-v2": Preset("whisper", "openai/whisper-large-v2", _whisper(1280, 32, 20)),
    "whisper-large-v3": Preset(
        "whisper", "openai/whisper-large-v3", _whisper(1280, 32, 20, 128, vocab=51866)
    ),
    "whisper-large-v3-turbo": Preset(
        "whisper", "openai/whisper-large-v3-turbo", _whisper(1280, 32, 20, 128, decoder_layers=4, vocab=51866)
    ),
    "tiny-whisper": Preset("whisper", None, _TINY_WHISPER),
    "w2v-bert-2.0": Preset("w2v-bert-2.0", "facebook/w2v-bert-2.0", _W2V_BERT),
    "tiny-w2v-bert": Preset("w2v-bert-2.0", None, _TINY_W2V_BERT),
}


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise KeyError(f"unknown backbone preset {name!r}; valid presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
