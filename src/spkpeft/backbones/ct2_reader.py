"""Read a CTranslate2 ``model.bin`` with numpy alone (no ctranslate2 needed).

The layout is the one ``ctranslate2/specs/model_spec.py`` (``ModelSpec._serialize``) writes and
``src/models/model.cc`` reads, binary versions 4 to 6 (all little-endian)::

    uint32 binary_version
    string spec_name                 # string = uint16 length (with the final NUL), bytes, NUL
    uint32 spec_revision
    uint32 num_variables
    num_variables x (string name, uint8 rank, rank x uint32 dim, uint8 dtype_id, uint32 num_bytes, data)
    uint32 num_aliases
    num_aliases x (string alias, string variable_name)

``dtype_id`` indexes ``(float32, int8, int16, int32, float16, bfloat16)``. Scalars (rank 0) hold model
flags such as ``decoder/num_heads``. Aliases name a variable stored once under another name (the
converter aliases every variable whose values equal an earlier one, e.g. the tied output projection).

Only the header is read up front: :meth:`Ct2ModelFile.array` reads one variable on demand, so a
multi-gigabyte ``model.bin`` is never held in memory twice.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SUPPORTED_BINARY_VERSIONS = (4, 5, 6)
DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
FLOAT_DTYPES = ("float32", "float16", "bfloat16")


class Ct2FormatError(ValueError):
    """``model.bin`` is missing, truncated or in a layout this reader does not know (names the file)."""


@dataclass(frozen=True)
class Ct2Variable:
    """Where one variable's bytes live in ``model.bin``."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # one of DTYPES
    offset: int  # byte offset of the data in the file
    num_bytes: int


class _Cursor:
    """Sequential little-endian reads over the file's bytes, with errors that name the file and position."""

    def __init__(self, path: Path, data: bytes | mmap.mmap) -> None:
        self.path, self.data, self.pos = path, data, 0

    def take(self, n: int, what: str) -> bytes:
        self.skip(n, what)
        return bytes(self.data[self.pos - n : self.pos])

    def skip(self, n: int, what: str) -> None:
        if self.pos + n > len(self.data):
            raise Ct2FormatError(
                f"{self.path} is truncated: reading {what} needs {n} bytes at offset {self.pos}, but the "
                f"file has {len(self.data)} bytes; copy or download model.bin again"
            )
        self.pos += n

    def uint(self, fmt: str, what: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        n = self.uint("H", f"the length of {what}")
        raw = self.take(n, what)
        if n == 0 or raw[-1] != 0:
            raise Ct2FormatError(
                f"{self.path}: {what} at offset {self.pos - n} is not a NUL-terminated string"
            )
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise Ct2FormatError(f"{self.path}: {what} at offset {self.pos - n} is not UTF-8") from None


class Ct2ModelFile:
    """The header of a CTranslate2 ``model.bin``: version, spec, revision, variable index and aliases.

    >>> m = Ct2ModelFile("faster-whisper-tiny.en/model.bin")
    >>> m.spec, m.revision, m.variables["encoder/conv1/weight"].shape
    ('WhisperSpec', 3, (384, 80, 3))
    >>> m.array("encoder/conv1/weight").dtype     # as stored (float16 here)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise Ct2FormatError(
                f"{self.path} does not exist: a CTranslate2 / faster-whisper model directory holds "
                "model.bin, config.json and a vocabulary"
            )
        self.file_size = self.path.stat().st_size
        if self.file_size == 0:
            raise Ct2FormatError(f"{self.path} is empty (0 bytes); copy or download model.bin again")
        with open(self.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            self._read_index(_Cursor(self.path, mm))

    def _read_index(self, cur: _Cursor) -> None:
        self.binary_version = cur.uint("I", "the binary version")
        if self.binary_version not in SUPPORTED_BINARY_VERSIONS:
            raise Ct2FormatError(
                f"{self.path}: binary version {self.binary_version} is not one this reader knows "
                f"({', '.join(map(str, SUPPORTED_BINARY_VERSIONS))}, written by CTranslate2 2.x to 4.x); "
                "is this a CTranslate2 model.bin?"
            )
        self.spec = cur.string("the spec name")
        self.revision = cur.uint("I", "the spec revision")
        self.variables: dict[str, Ct2Variable] = {}
        for i in range(cur.uint("I", "the number of variables")):
            var = _read_variable(cur, i)
            self.variables[var.name] = var
        self.aliases: dict[str, str] = {}
        for _ in range(cur.uint("I", "the number of aliases")):
            alias = cur.string("an alias name")
            self.aliases[alias] = cur.string(f"the target of alias {alias!r}")
        if cur.pos != self.file_size:
            raise Ct2FormatError(
                f"{self.path}: {self.file_size - cur.pos} unexpected bytes after the last alias (offset "
                f"{cur.pos}); the file is damaged or not a CTranslate2 model.bin"
            )

    def names(self) -> list[str]:
        """Every name the model defines: stored variables and aliases."""
        return sorted([*self.variables, *self.aliases])

    def resolve(self, name: str) -> Ct2Variable:
        """The stored variable behind ``name`` (following aliases)."""
        seen = [name]
        while name in self.aliases:
            name = self.aliases[name]
            if name in seen:
                raise Ct2FormatError(f"{self.path}: aliases form a cycle: {' -> '.join([*seen, name])}")
            seen.append(name)
        if name not in self.variables:
            raise KeyError(
                f"{self.path} has no variable {seen[0]!r}" + (f" (alias of {name!r})" * (len(seen) > 1))
            )
        return self.variables[name]

    def array(self, name: str) -> np.ndarray:
        """The values of ``name`` as stored (bfloat16 as its ``uint16`` bits: see :func:`to_float32`)."""
        var = self.resolve(name)
        np_dtype = np.uint16 if var.dtype == "bfloat16" else np.dtype(var.dtype)
        count = int(np.prod(var.shape, dtype=np.int64))
        arr = np.fromfile(self.path, dtype=np_dtype, count=count, offset=var.offset)
        return arr.reshape(var.shape)

    def float32(self, name: str) -> np.ndarray:
        """``name`` as float32; exact for float16, bfloat16 and float32 storage."""
        var = self.resolve(name)
        if var.dtype not in FLOAT_DTYPES:
            raise Ct2FormatError(f"{self.path}: variable {name!r} is {var.dtype}, not a float type")
        return to_float32(self.array(name), var.dtype)

    def scalar(self, name: str) -> int | float:
        """A rank-0 variable (a model flag) as a Python number."""
        var = self.resolve(name)
        if var.shape != ():
            raise Ct2FormatError(f"{self.path}: {name!r} has shape {var.shape}, expected a scalar")
        value = self.array(name)
        return value.item() if var.dtype != "bfloat16" else float(to_float32(value, "bfloat16"))


def to_float32(values: np.ndarray, dtype: str) -> np.ndarray:
    """Stored values -> float32, exactly (every float16 and bfloat16 value is a float32 value)."""
    if dtype == "bfloat16":
        return (values.astype(np.uint32) << 16).view(np.float32)
    return values.astype(np.float32)


def _read_variable(cur: _Cursor, index: int) -> Ct2Variable:
    name = cur.string(f"the name of variable {index}")
    rank = cur.uint("B", f"the rank of {name!r}")
    shape = tuple(cur.uint("I", f"dimension {d} of {name!r}") for d in range(rank))
    type_id = cur.uint("B", f"the dtype of {name!r}")
    if type_id >= len(DTYPES):
        raise Ct2FormatError(
            f"{cur.path}: variable {name!r} has dtype id {type_id}; known ids 0-{len(DTYPES) - 1}"
        )
    dtype = DTYPES[type_id]
    num_bytes = cur.uint("I", f"the size of {name!r}")
    item = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
    expected = int(np.prod(shape, dtype=np.int64)) * item
    if num_bytes != expected:
        raise Ct2FormatError(
            f"{cur.path}: variable {name!r} declares {num_bytes} bytes, but shape {shape} of {dtype} needs "
            f"{expected}"
        )
    offset = cur.pos
    cur.skip(num_bytes, f"the data of {name!r}")
    return Ct2Variable(name, shape, dtype, offset, num_bytes)
