"""Bad CTranslate2 directories: each gives an error naming the file and what was expected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ct2_helpers import copy_ct2, ct2_converter, rewrite_model_bin

from spkpeft.backbones.ct2_reader import Ct2FormatError, Ct2ModelFile
from spkpeft.backbones.faster_whisper import convert_faster_whisper


def _convert_error(ct2_dir: Path, tmp_path: Path) -> str:
    with pytest.raises(Ct2FormatError) as err:
        convert_faster_whisper(ct2_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    return str(err.value)


def test_reader_matches_ctranslate2_layout(ct2_tiny: Path) -> None:
    m = Ct2ModelFile(ct2_tiny / "model.bin")
    assert (m.binary_version, m.spec, m.revision) == (6, "WhisperSpec", 3)
    assert m.variables["encoder/conv1/weight"].shape == (64, 80, 3)
    assert m.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert m.resolve("decoder/projection/weight").name == "decoder/embeddings/weight"
    assert m.scalar("encoder/num_heads") == 2


def test_missing_model_bin(ct2_tiny: Path, tmp_path: Path) -> None:
    src = copy_ct2(ct2_tiny, tmp_path / "ct2")
    (src / "model.bin").unlink()
    msg = _convert_error(src, tmp_path)
    assert str(src / "model.bin") in msg and "does not exist" in msg


@pytest.mark.parametrize("keep", [0, 3, 200, -10])
def test_truncated_model_bin(ct2_tiny: Path, tmp_path: Path, keep: int) -> None:
    src = copy_ct2(ct2_tiny, tmp_path / "ct2")
    data = (src / "model.bin").read_bytes()
    (src / "model.bin").write_bytes(data[:keep])
    msg = _convert_error(src, tmp_path)
    assert str(src / "model.bin") in msg
    assert ("empty" if keep == 0 else "truncated") in msg


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"version": 9}, r"binary version 9 is not one this reader knows \(4, 5, 6"),
        ({"version": 1}, "binary version 1"),
        (
            {"spec": "TransformerSpec"},
            r"holds a 'TransformerSpec' model \(a CTranslate2 spec\), not a Whisper",
        ),
        ({"spec": "Wav2Vec2Spec"}, "not a Whisper model: expected spec 'WhisperSpec'"),
        ({"spec": "NoSuchSpec"}, r"\(a spec name spkpeft does not know\), not a Whisper model"),
        ({"revision": 2}, r"WhisperSpec revision 2; this converter knows revision\(s\) 3"),
        ({"trailing": b"\0\0\0"}, "3 unexpected bytes after the last alias"),
        ({"drop": ("encoder/layer_1/ffn/linear_0/bias",)}, "'encoder/layer_1/ffn/linear_0/bias' is missing"),
        (
            {"add": {"encoder/extra/weight": np.ones((2, 2), np.float32)}},
            "have no place.*encoder/extra/weight",
        ),
        (
            {
                "add": {"decoder/scale_embeddings": np.array(1, np.int8)},
                "drop": ("decoder/scale_embeddings",),
            },
            "flag decoder/scale_embeddings = 1, but transformers' Whisper needs 0",
        ),
    ],
)
def test_bad_header_or_variables(ct2_tiny: Path, tmp_path: Path, change: dict, expected: str) -> None:
    src = copy_ct2(ct2_tiny, tmp_path / "ct2")
    rewrite_model_bin(src / "model.bin", **change)
    msg = _convert_error(src, tmp_path)
    assert str(src / "model.bin") in msg
    assert __import__("re").search(expected, msg), msg


def test_nonzero_key_bias_is_refused(ct2_tiny: Path, tmp_path: Path) -> None:
    src = copy_ct2(ct2_tiny, tmp_path / "ct2")
    name = "encoder/layer_0/self_attention/linear_0/bias"
    bias = Ct2ModelFile(src / "model.bin").array(name).copy()
    bias[64:128] = 0.5  # the k slice of q, k, v
    rewrite_model_bin(src / "model.bin", drop=(name,), add={name: bias})
    assert "non-zero key-projection slice" in _convert_error(src, tmp_path)


@pytest.mark.parametrize("quantization", ["int8", "int8_float32", "int16"])
def test_quantised_models_are_refused(hf_tiny: Path, tmp_path: Path, quantization: str) -> None:
    out = tmp_path / quantization
    ct2_converter()(str(hf_tiny), copy_files=["tokenizer.json"]).convert(str(out), quantization=quantization)
    msg = _convert_error(out, tmp_path)
    assert str(out / "model.bin") in msg and "is quantised" in msg and "--quantization float16" in msg
