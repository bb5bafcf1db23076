"""Helpers for the faster-whisper tests: CTranslate2's converter (skips without it), copying a CT2
directory, and re-writing a model.bin (model_spec.py's layout) with a changed header or variables."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from spkpeft.backbones.ct2_reader import DTYPES, Ct2ModelFile


def ct2_converter():  # noqa: ANN201
    """``ctranslate2.converters.TransformersConverter``; skips the test when ctranslate2 is absent."""
    ct2 = pytest.importorskip(
        "ctranslate2", reason="ctranslate2 is not installed (test extra: pip install -e '.[test]')"
    )
    return ct2.converters.TransformersConverter


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
