"""Tiny random Whisper models in CTranslate2 format, written by CTranslate2's own converter (the oracle for
the model.bin layout and the variable mapping), and a re-writer that damages a model.bin on purpose."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from spkpeft.backbones.ct2_reader import DTYPES, Ct2ModelFile

COPY_FILES = ["tokenizer.json", "preprocessor_config.json"]


def _ct2_converter():  # noqa: ANN202
    ct2 = pytest.importorskip(
        "ctranslate2", reason="ctranslate2 is not installed (test extra: pip install -e '.[test]')"
    )
    return ct2.converters.TransformersConverter


@pytest.fixture(scope="session")
def hf_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny transformers Whisper (2+2 layers, width 64) whose every parameter, biases and norms included,
    is random, so a swapped or transposed weight in the mapping cannot go unnoticed."""
    from transformers import WhisperForConditionalGeneration

    from spkpeft.tsasr.tiny import build_tiny_whisper

    out = build_tiny_whisper(tmp_path_factory.mktemp("hf_tiny"))
    model = WhisperForConditionalGeneration.from_pretrained(out)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def ct2_tiny(hf_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``hf_tiny`` converted by CTranslate2 to float32 (what ``ct2-transformers-converter`` writes)."""
    out = tmp_path_factory.mktemp("ct2") / "fp32"
    _ct2_converter()(str(hf_tiny), copy_files=COPY_FILES).convert(str(out), quantization="float32")
    return out


@pytest.fixture(scope="session")
def ct2_tiny_fp16_default_init(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(transformers dir, float16 CTranslate2 dir) of a default-initialised tiny Whisper: zero biases and
    unit norms, so the converter aliases most variables to one another (as in faster-whisper models)."""
    from spkpeft.tsasr.tiny import build_tiny_whisper

    hf = build_tiny_whisper(tmp_path_factory.mktemp("hf_default"))
    out = tmp_path_factory.mktemp("ct2") / "fp16"
    _ct2_converter()(str(hf), copy_files=COPY_FILES).convert(str(out), quantization="float16")
    return hf, out


def copy_ct2(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return struct.pack("<H", len(raw) + 1) + raw + b"\0"


def rewrite_model_bin(
    path: Path,
    *,
    version: int | None = None,
    spec: str | None = None,
    revision: int | None = None,
    drop: tuple[str, ...] = (),
    add: dict[str, np.ndarray] | None = None,
    trailing: bytes = b"",
) -> None:
    """Re-serialise ``path`` (model_spec.py's layout) with a changed header, variables dropped or added,
    or bytes appended."""
    m = Ct2ModelFile(path)
    variables = [(n, m.array(n), v.dtype) for n, v in m.variables.items() if n not in drop]
    variables += [(n, a, a.dtype.name) for n, a in (add or {}).items()]
    parts = [
        struct.pack("<I", m.binary_version if version is None else version),
        _string(m.spec if spec is None else spec),
        struct.pack("<I", m.revision if revision is None else revision),
        struct.pack("<I", len(variables)),
    ]
    for name, arr, dtype in variables:
        parts += [_string(name), struct.pack("<B", arr.ndim), struct.pack(f"<{arr.ndim}I", *arr.shape)]
        parts += [struct.pack("<BI", DTYPES.index(dtype), arr.nbytes), arr.tobytes()]
    aliases = {a: t for a, t in m.aliases.items() if a not in drop}
    parts.append(struct.pack("<I", len(aliases)))
    parts += [_string(a) + _string(t) for a, t in aliases.items()]
    path.write_bytes(b"".join(parts) + trailing)
