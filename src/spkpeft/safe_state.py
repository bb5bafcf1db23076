"""Nested training state (optimizer, scheduler, RNG, AMP scaler) in one safetensors file: never pickle.

``save_state(obj, path)`` writes every tensor of ``obj`` into ``path`` (a ``.safetensors`` file) and the
structure around them as JSON in the file's metadata (key ``structure``). ``load_state(path)`` rebuilds
the object. The structure may hold dicts (any int/str/float/bool/None keys), lists, tuples, str, int,
float (NaN and inf included, exactly), bool, None, torch tensors and numeric numpy arrays (the numpy RNG
state). Reading only ever builds those types, so a crafted file can hold wrong values but cannot run
code, unlike ``torch.load(weights_only=False)`` / ``pickle``.

JSON encoding (tags are objects with one ``__tag__`` key): tensor -> ``{"__tensor__": "t3"}`` (the
safetensors key); numpy array -> ``{"__ndarray__": [...], "dtype": "uint32"}``; tuple ->
``{"__tuple__": [...]}``; a dict whose keys are not all plain strings -> ``{"__dict__": [[k, v], ...]}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

FORMAT = "spkpeft-state-1"
_NUMERIC_KINDS = "biuf"  # numpy dtype kinds a stored array may have (bool, int, uint, float)


def save_state(obj: Any, path: str | Path) -> None:
    """Write ``obj`` (see the module docstring for what it may contain) to ``path``."""
    tensors: dict[str, torch.Tensor] = {}
    structure = _encode(obj, tensors, "state")
    meta = {"format": FORMAT, "structure": json.dumps(structure, allow_nan=True)}
    save_file(tensors, str(path), metadata=meta)


def load_state(path: str | Path) -> Any:
    """Read a :func:`save_state` file (tensors on the CPU). Raises ValueError naming the file when it is
    not one (a pickled ``.pt`` file is never read)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises SafetensorError / OSError for foreign or broken files
        raise ValueError(f"{path} is not a readable state file ({e})") from None
    if meta.get("format") != FORMAT or "structure" not in meta:
        raise ValueError(f"{path}: metadata format {meta.get('format')!r}, expected {FORMAT!r}")
    return _decode(json.loads(meta["structure"]), tensors, path)


def _encode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"{where}: numpy arrays of dtype {obj.dtype} cannot be stored without pickle")
        return {"__ndarray__": obj.tolist(), "dtype": obj.dtype.str}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        items = [(k, _encode(v, tensors, f"{where}[{k!r}]")) for k, v in obj.items()]
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return dict(items)
        bad = [k for k in obj if not (k is None or isinstance(k, (bool, int, float, str)))]
        if bad:
            raise TypeError(f"{where}: dict key {bad[0]!r} of type {type(bad[0]).__name__} cannot be stored")
        return {"__dict__": [[k, v] for k, v in items]}
    raise TypeError(f"{where}: a {type(obj).__name__} cannot be stored without pickle")


def _decode(obj: Any, tensors: dict[str, torch.Tensor], path: Path) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors, path) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        key = obj["__tensor__"]
        if key not in tensors:
            raise ValueError(f"{path}: the structure names tensor {key!r}, which the file does not hold")
        return tensors[key]
    if "__ndarray__" in obj:
        try:
            dtype = np.dtype(str(obj["dtype"]))
        except TypeError:
            raise ValueError(f"{path}: unknown array dtype {obj['dtype']!r}") from None
        if dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"{path}: array dtype {dtype} is not numeric")
        return np.array(obj["__ndarray__"], dtype=dtype)
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors, path) for v in obj["__tuple__"])
    if "__dict__" in obj:
        return {k: _decode(v, tensors, path) for k, v in obj["__dict__"]}
    return {k: _decode(v, tensors, path) for k, v in obj.items()}
