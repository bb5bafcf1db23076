"""CTranslate2 ``WhisperSpec`` variables -> transformers ``WhisperForConditionalGeneration`` weights.

The spec (``ctranslate2/specs/whisper_spec.py``, revision 3) names the weights as below; ``i`` runs over
layers. ``linear_*`` weights are (out, in) like ``torch.nn.Linear``, convolutions (out, in, k) like
``torch.nn.Conv1d``, layer norms store ``gamma`` / ``beta``.

| CTranslate2 | transformers |
|---|---|
| ``encoder/conv{1,2}/{weight,bias}`` | ``model.encoder.conv{1,2}.*`` |
| ``encoder/position_encodings/encodings`` (T_enc, D) | ``model.encoder.embed_positions.weight`` |
| ``{enc,dec}oder/layer_i/self_attention/linear_0`` (3D, D): q, k, v stacked | ``self_attn.{q,k,v}_proj`` |
| ``{enc,dec}oder/layer_i/self_attention/linear_1`` | ``self_attn.out_proj`` |
| ``{enc,dec}oder/layer_i/self_attention/layer_norm`` | ``self_attn_layer_norm`` |
| ``decoder/layer_i/attention/linear_0`` | ``encoder_attn.q_proj`` |
| ``decoder/layer_i/attention/linear_1`` (2D, D): k, v stacked | ``encoder_attn.{k,v}_proj`` |
| ``decoder/layer_i/attention/linear_2`` | ``encoder_attn.out_proj`` |
| ``decoder/layer_i/attention/layer_norm`` | ``encoder_attn_layer_norm`` |
| ``{enc,dec}oder/layer_i/ffn/linear_{0,1}``, ``ffn/layer_norm`` | ``fc1``, ``fc2``, ``final_layer_norm`` |
| ``{enc,dec}oder/layer_norm`` | ``model.{enc,dec}oder.layer_norm`` |
| ``decoder/embeddings/weight`` (V, D) | ``model.decoder.embed_tokens.weight`` |
| ``decoder/position_encodings/encodings`` (T_dec, D) | ``model.decoder.embed_positions.weight`` |
| ``decoder/projection/weight`` (an alias of the embeddings in every Whisper) | ``proj_out.weight``, tied |

Nothing is derived: both position tables are stored (the encoder's is Whisper's fixed sinusoid table).
The key bias slices of the fused projections are zeros written by the converter (transformers' ``k_proj``
has no bias); they are checked to be zero, never silently dropped. Model flags (rank-0 variables) are
checked against what transformers' Whisper computes (GELU, pre-norm, no embedding scale, no ALiBi).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from spkpeft.backbones.ct2_reader import FLOAT_DTYPES, Ct2FormatError, Ct2ModelFile

WHISPER_SPEC = "WhisperSpec"
WHISPER_REVISIONS = (3,)
# Specs CTranslate2 4.x writes; named in the error for a model.bin that is not Whisper.
OTHER_CT2_SPECS = (
    "TransformerSpec",
    "TransformerDecoderModelSpec",
    "TransformerEncoderModelSpec",
    "Wav2Vec2Spec",
    "Wav2Vec2BertSpec",
    "Drama3Spec",
)
GELU = 3  # ctranslate2.specs.common_spec.Activation.GELU
# flag -> the value transformers' Whisper implies
REQUIRED_FLAGS = {
    "decoder/activation": GELU,
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/alibi": 0,
    "decoder/start_from_zero_embedding": 0,
}
# Flags with no meaning for Whisper: ALiBi options (ALiBi is off) and CTranslate2's generic alignment
# layer/heads (Whisper's alignment heads come from config.json instead).
IGNORED_FLAGS = (
    "decoder/alibi_use_positive_positions",
    "decoder/scale_alibi",
    "decoder/alignment_layer",
    "decoder/alignment_heads",
)


@dataclass
class WhisperWeights:
    """float32 transformers weights plus the architecture read from the shapes.

    ``state`` maps ``WhisperForConditionalGeneration`` state-dict keys to arrays; ``proj_out.weight``
    is included (the same array as the embeddings when ``tied``).
    """

    state: dict[str, np.ndarray] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)
    tied: bool = True


class _Taker:
    """Reads CT2 variables as float32 and remembers every name it used (for the strict coverage check)."""

    def __init__(self, m: Ct2ModelFile) -> None:
        self.m, self.used, self.state = m, set(), {}

    def get(self, name: str) -> np.ndarray:
        if name not in self.m.variables and name not in self.m.aliases:
            raise Ct2FormatError(f"{self.m.path}: WhisperSpec variable {name!r} is missing")
        self.used.add(name)
        return self.m.float32(name)

    def linear(self, ct2: str, hf: str) -> None:
        self.state[f"{hf}.weight"] = self.get(f"{ct2}/weight")
        self.state[f"{hf}.bias"] = self.get(f"{ct2}/bias")

    def norm(self, ct2: str, hf: str) -> None:
        self.state[f"{hf}.weight"] = self.get(f"{ct2}/gamma")
        self.state[f"{hf}.bias"] = self.get(f"{ct2}/beta")

    def fused(self, ct2: str, hf: list[str]) -> None:
        """Split a stacked projection (len(hf) * D, D) into ``hf``; the slice for a ``k_proj`` must have
        a zero bias (transformers' key projection has none)."""
        weight, bias = self.get(f"{ct2}/weight"), self.get(f"{ct2}/bias")
        for name, w, b in zip(hf, np.split(weight, len(hf)), np.split(bias, len(hf))):
            self.state[f"{name}.weight"] = w
            if name.endswith("k_proj"):
                if np.any(b != 0):
                    raise Ct2FormatError(
                        f"{self.m.path}: {ct2}/bias has a non-zero key-projection slice; transformers' "
                        "Whisper has no key bias, so this is not a Whisper model spkpeft can convert"
                    )
            else:
                self.state[f"{name}.bias"] = b


def check_whisper_spec(m: Ct2ModelFile) -> None:
    """Raise :class:`Ct2FormatError` unless ``m`` is an unquantised Whisper of a known revision."""
    if m.spec != WHISPER_SPEC:
        kind = "a CTranslate2 spec" if m.spec in OTHER_CT2_SPECS else "a spec name spkpeft does not know"
        raise Ct2FormatError(
            f"{m.path} holds a {m.spec!r} model ({kind}), not a Whisper model: expected spec "
            f"{WHISPER_SPEC!r} (faster-whisper / ct2-transformers-converter output of a Whisper checkpoint)"
        )
    if m.revision not in WHISPER_REVISIONS:
        raise Ct2FormatError(
            f"{m.path}: {WHISPER_SPEC} revision {m.revision}; this converter knows revision(s) "
            f"{', '.join(map(str, WHISPER_REVISIONS))} (CTranslate2 4.x). Re-convert the original model "
            "with a current ct2-transformers-converter"
        )
    quantised = [v for v in m.variables.values() if v.shape and v.dtype not in FLOAT_DTYPES]
    scales = [n for n in m.variables if n.endswith("_scale")]
    if quantised or scales:
        first = quantised[0] if quantised else m.variables[scales[0]]
        raise Ct2FormatError(
            f"{m.path} is quantised ({first.name!r} is {first.dtype}"
            + (f", with scales such as {scales[0]!r}" if scales else "")
            + "): quantised weights cannot be turned back into the original ones, so spkpeft refuses them. "
            "Use a float16 or float32 CTranslate2 model (ct2-transformers-converter --quantization float16)"
        )


def _count_layers(m: Ct2ModelFile, stack: str) -> int:
    pat = re.compile(rf"^{stack}/layer_(\d+)/")
    found = {int(g.group(1)) for n in m.names() if (g := pat.match(n))}
    if found != set(range(len(found))) or not found:
        raise Ct2FormatError(f"{m.path}: {stack} layers {sorted(found)} are not 0..N-1")
    return len(found)


def _check_flags(m: Ct2ModelFile, take: _Taker) -> None:
    for name, want in REQUIRED_FLAGS.items():
        if name in m.variables or name in m.aliases:
            take.used.add(name)
            got = m.scalar(name)
            if got != want:
                raise Ct2FormatError(
                    f"{m.path}: flag {name} = {got}, but transformers' Whisper needs {want}; "
                    "this is not a standard Whisper model"
                )
    take.used.update(n for n in IGNORED_FLAGS if n in m.variables or n in m.aliases)


def _layer(take: _Taker, stack: str, i: int) -> None:
    ct2, hf = f"{stack}/layer_{i}", f"model.{stack}.layers.{i}"
    take.fused(f"{ct2}/self_attention/linear_0", [f"{hf}.self_attn.{p}_proj" for p in "qkv"])
    take.linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
    take.norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
    if stack == "decoder":
        take.linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
        take.fused(f"{ct2}/attention/linear_1", [f"{hf}.encoder_attn.{p}_proj" for p in "kv"])
        take.linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
        take.norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
    take.linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
    take.linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")
    take.norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")


def read_whisper_weights(m: Ct2ModelFile) -> WhisperWeights:
    """Map every variable of a CTranslate2 Whisper ``model.bin`` to transformers weights (float32, exact).

    Raises :class:`Ct2FormatError` for a non-Whisper or quantised model, a missing variable, or a
    variable nothing maps (the mapping is strict both ways).
    """
    check_whisper_spec(m)
    take = _Taker(m)
    _check_flags(m, take)
    n_enc, n_dec = _count_layers(m, "encoder"), _count_layers(m, "decoder")
    for i in range(2):
        take.linear(f"encoder/conv{i + 1}", f"model.encoder.conv{i + 1}")
    take.state["model.encoder.embed_positions.weight"] = take.get("encoder/position_encodings/encodings")
    take.norm("encoder/layer_norm", "model.encoder.layer_norm")
    take.state["model.decoder.embed_tokens.weight"] = take.get("decoder/embeddings/weight")
    take.state["model.decoder.embed_positions.weight"] = take.get("decoder/position_encodings/encodings")
    take.norm("decoder/layer_norm", "model.decoder.layer_norm")
    for stack, n in (("encoder", n_enc), ("decoder", n_dec)):
        for i in range(n):
            _layer(take, stack, i)
    proj = take.get("decoder/projection/weight")
    emb = take.state["model.decoder.embed_tokens.weight"]
    tied = m.resolve("decoder/projection/weight") == m.resolve("decoder/embeddings/weight") or (
        proj.shape == emb.shape and np.array_equal(proj, emb)
    )
    take.state["proj_out.weight"] = emb if tied else proj
    dims = _dims(m, take, n_enc, n_dec)
    unused = sorted(set(m.names()) - take.used)
    if unused:
        raise Ct2FormatError(
            f"{m.path}: {len(unused)} variable(s) have no place in transformers' Whisper: "
            f"{', '.join(unused[:8])}{' ...' if len(unused) > 8 else ''}"
        )
    return WhisperWeights(take.state, dims, tied)


def _dims(m: Ct2ModelFile, take: _Taker, n_enc: int, n_dec: int) -> dict[str, int]:
    """``WhisperConfig`` sizes, read from the weight shapes and the ``num_heads`` flags."""
    take.used.update({"encoder/num_heads", "decoder/num_heads"})
    state = take.state
    conv1 = state["model.encoder.conv1.weight"]
    return {
        "d_model": conv1.shape[0],
        "num_mel_bins": conv1.shape[1],
        "vocab_size": state["model.decoder.embed_tokens.weight"].shape[0],
        "encoder_layers": n_enc,
        "decoder_layers": n_dec,
        "encoder_attention_heads": int(m.scalar("encoder/num_heads")),
        "decoder_attention_heads": int(m.scalar("decoder/num_heads")),
        "encoder_ffn_dim": state["model.encoder.layers.0.fc1.weight"].shape[0],
        "decoder_ffn_dim": state["model.decoder.layers.0.fc1.weight"].shape[0],
        "max_source_positions": state["model.encoder.embed_positions.weight"].shape[0],
        "max_target_positions": state["model.decoder.embed_positions.weight"].shape[0],
    }
