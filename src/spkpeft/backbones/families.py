"""Where each backbone family keeps its parts, so methods never hard-code one family's module names.

All paths are dotted attribute paths. ``layers`` is relative to the transformers base model; the other
paths are relative to one Transformer layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from spkpeft.registry import Registry


@dataclass(frozen=True)
class FamilySpec:
    """Module layout of one transformers speech-encoder family."""

    name: str
    model_type: str  # transformers ``config.model_type``
    model_cls: str  # transformers class name of the bare encoder
    config_cls: str
    layers: str = "encoder.layers"
    q_proj: str = "attention.q_proj"
    k_proj: str = "attention.k_proj"
    v_proj: str = "attention.v_proj"
    out_proj: str = "attention.out_proj"
    ffn: str = "feed_forward"  # the feed-forward block; its input is the FFN input
    ffn_norm: str = "final_layer_norm"
    attn_norm: str = "layer_norm"
    feature_encoder: str = "feature_extractor"  # the CNN waveform encoder
    relative_position_bias: bool = False  # WavLM: layer 0 computes a bias passed to later layers

    def proj_names(self, which: tuple[str, ...]) -> list[str]:
        """Leaf module names (for peft ``target_modules``) of the attention projections in ``which``."""
        table = {"q": self.q_proj, "k": self.k_proj, "v": self.v_proj, "o": self.out_proj}
        bad = [w for w in which if w not in table]
        if bad:
            raise ValueError(f"unknown projection(s) {bad}; valid: {sorted(table)}")
        return [table[w].split(".")[-1] for w in which]


FAMILIES: Registry[FamilySpec] = Registry("backbone family")

_SPECS = [
    FamilySpec("wavlm", "wavlm", "WavLMModel", "WavLMConfig", relative_position_bias=True),
    FamilySpec("hubert", "hubert", "HubertModel", "HubertConfig"),
    FamilySpec("wav2vec2", "wav2vec2", "Wav2Vec2Model", "Wav2Vec2Config"),
]
for _spec in _SPECS:
    FAMILIES.register(_spec.name)(lambda s=_spec: s)


def family_spec(name: str) -> FamilySpec:
    """The :class:`FamilySpec` of a family name (``wavlm``, ``hubert``, ``wav2vec2``)."""
    return FAMILIES.build(name)


def family_of_model_type(model_type: str) -> FamilySpec:
    for name in FAMILIES.names():
        spec = family_spec(name)
        if spec.model_type == model_type:
            return spec
    valid = [family_spec(n).model_type for n in FAMILIES.names()]
    raise ValueError(f"unsupported backbone model_type {model_type!r}; supported: {', '.join(valid)}")
