"""The family table: what each transformers speech-encoder family is made of, so that the one layer loop
(:mod:`spkpeft.backbones.backbone`) and the methods never hard-code one family's module names.

A family is one :class:`FamilySpec`: three named parts, each looked up in its own registry, plus module
paths. Adding a family is one entry here (and a tiny preset and a test row); see docs/backbones.md.

- ``front_end`` (:data:`spkpeft.backbones.front_ends.FRONT_ENDS`): waveform (B, S) -> frames (B, T, D)
  at model width, and the samples -> frames length formula (``waveform_cnn``: the wav2vec2-line CNN +
  feature projection; ``log_mel``: Whisper's log-mel + two convolutions; ``fbank``: w2v-BERT 2.0's
  Kaldi fbank, stacked in pairs, + feature projection).
- ``positions`` (:data:`spkpeft.backbones.positions.POSITIONS`): frames -> state 0, the first layer's
  input (``conv``: the positional convolution; ``sinusoidal``: a slice of a fixed position table;
  ``none``: padded frames zeroed, dropout; positions are relative, inside the attention).
- ``attention`` (:data:`spkpeft.backbones.attention_inputs.ATTENTION_INPUTS`): the keyword arguments
  each layer takes beside ``h`` for the current sequence and padding mask (``mask``: transformers' 4-D
  mask for the configured attention kernel; ``relative_bias``: WavLM's (B, N) mask + position bias;
  ``conformer``: w2v-BERT 2.0's 4-D mask, relative positions and depthwise-convolution mask).

Module paths are dotted attribute paths: ``layers``, ``norm``, ``feature_encoder``, ``projection`` and
``position_module`` relative to the transformers model, the rest relative to one Transformer layer.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import transformers
from torch import nn

from spkpeft.registry import Registry


@dataclass(frozen=True)
class FamilySpec:
    """Parts and module layout of one transformers speech-encoder family."""

    name: str
    model_type: str  # transformers ``config.model_type``
    model_cls: str  # the bare encoder's class: a name in ``transformers`` or a path below it
    config_cls: str
    front_end: str = "waveform_cnn"
    positions: str = "conv"
    attention: str = "mask"
    feature_encoder: tuple[str, ...] = ("feature_extractor",)  # front-end modules frozen by default
    projection: str | None = "feature_projection"  # front end's trainable output projection, if any
    position_module: str = "encoder.pos_conv_embed"  # what ``positions`` adds (a conv, a table)
    layers: str = "encoder.layers"
    # The encoder's own layer norm: on state 0 in post-LN models, on the last state in pre-LN ones
    # (None: the encoder has none).
    norm: str | None = "encoder.layer_norm"
    pre_ln: bool | str = "do_stable_layer_norm"  # True / False, or the boolean config field that says
    q_proj: str = "attention.q_proj"
    k_proj: str = "attention.k_proj"
    v_proj: str = "attention.v_proj"
    out_proj: str = "attention.out_proj"
    ffn_in: str = "feed_forward"  # the module whose input is the feed-forward block's input
    ffn_out: str = "feed_forward"  # the module whose output is the feed-forward block's output
    # Prefixes under which a whole-model checkpoint keeps the encoder's weights (stripped at load).
    checkpoint_prefixes: tuple[str, ...] = ()
    # Parameters the forward never trains, not even full fine-tuning (prefixes of transformers names).
    fixed: tuple[str, ...] = ("masked_spec_embed", "adapter.")

    def proj_names(self, which: tuple[str, ...]) -> list[str]:
        """Leaf module names (for peft ``target_modules``) of the attention projections in ``which``."""
        table = {"q": self.q_proj, "k": self.k_proj, "v": self.v_proj, "o": self.out_proj}
        bad = [w for w in which if w not in table]
        if bad:
            raise ValueError(f"unknown projection(s) {bad}; valid: {sorted(table)}")
        return [table[w].split(".")[-1] for w in which]

    def model_class(self) -> type:
        """The transformers class of :attr:`model_cls`."""
        module, _, name = self.model_cls.rpartition(".")
        where = importlib.import_module(f"transformers.{module}") if module else transformers
        return getattr(where, name)

    def is_pre_ln(self, config: object) -> bool:
        """Whether a model with this transformers ``config`` normalises before each sub-layer (pre-LN)."""
        return self.pre_ln if isinstance(self.pre_ln, bool) else bool(getattr(config, self.pre_ln))


FAMILIES: Registry[FamilySpec] = Registry("backbone family", "backbone families")

_SPECS = [
    FamilySpec("wavlm", "wavlm", "WavLMModel", "WavLMConfig", attention="relative_bias"),
    FamilySpec("hubert", "hubert", "HubertModel", "HubertConfig"),
    FamilySpec("wav2vec2", "wav2vec2", "Wav2Vec2Model", "Wav2Vec2Config"),
    FamilySpec(
        "whisper",
        "whisper",
        "models.whisper.modeling_whisper.WhisperEncoder",  # not exported at the top level
        "WhisperConfig",
        front_end="log_mel",
        positions="sinusoidal",
        feature_encoder=("conv1", "conv2"),
        projection=None,
        position_module="embed_positions",
        layers="layers",
        norm="layer_norm",
        pre_ln=True,
        q_proj="self_attn.q_proj",
        k_proj="self_attn.k_proj",
        v_proj="self_attn.v_proj",
        out_proj="self_attn.out_proj",
        ffn_in="fc1",
        ffn_out="fc2",
        checkpoint_prefixes=("model.encoder.", "encoder."),  # WhisperForConditionalGeneration, WhisperModel
        fixed=("embed_positions.",),  # the sinusoidal table: fixed in Whisper, fixed here
    ),
    FamilySpec(
        "w2v-bert-2.0",
        "wav2vec2-bert",
        "Wav2Vec2BertModel",
        "Wav2Vec2BertConfig",
        front_end="fbank",
        positions="none",
        attention="conformer",
        feature_encoder=(),  # the fbank has no parameters
        position_module="encoder.dropout",
        norm=None,  # each Conformer layer ends in its own final_layer_norm; the encoder has none
        pre_ln=True,
        q_proj="self_attn.linear_q",
        k_proj="self_attn.linear_k",
        v_proj="self_attn.linear_v",
        out_proj="self_attn.linear_out",
        ffn_in="ffn2",  # the second (half-step) feed-forward block
        ffn_out="ffn2",
        fixed=("masked_spec_embed", "adapter.", "intermediate_ffn."),  # unused by the encoder's forward
    ),
]
for _spec in _SPECS:
    FAMILIES.register(_spec.name)(lambda s=_spec: s)


def get_module(root: nn.Module, path: str) -> nn.Module:
    """The submodule at dotted ``path`` (``encoder.layers``), with an error naming the missing part."""
    mod = root
    for part in path.split("."):
        if not hasattr(mod, part):
            raise AttributeError(f"{type(root).__name__} has no submodule {path!r} (missing {part!r})")
        mod = getattr(mod, part)
    return mod


def family_spec(name: str) -> FamilySpec:
    """The :class:`FamilySpec` of a family name (``wavlm``, ``whisper``, ``w2v-bert-2.0``, ...)."""
    return FAMILIES.build(name)


def family_of_model_type(model_type: str) -> FamilySpec:
    for name in FAMILIES.names():
        spec = family_spec(name)
        if spec.model_type == model_type:
            return spec
    valid = [family_spec(n).model_type for n in FAMILIES.names()]
    raise ValueError(f"unsupported backbone model_type {model_type!r}; supported: {', '.join(valid)}")
