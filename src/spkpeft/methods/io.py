"""Save and load a method apart from its backbone: ``method.safetensors`` (the method's own parameters)
plus ``method.json`` (its name, config, and a fingerprint of the backbone it was built for).

Generic over every method: all it needs is ``own_parameters()`` (name -> parameter, names prefixed by
the method name), ``name`` and ``cfg``; a method may add ``extra_state() -> dict`` (JSON values, saved
in ``method.json``) and ``check_extra_state(dict)`` (called at load, raises on a mismatch). Loading
rebuilds the method from the saved config on the given backbone, refuses a backbone whose family /
depth / width differ from the fingerprint, and copies the tensors strictly (same names, same shapes).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from spkpeft.config import parse_named, to_dict
from spkpeft.methods.base import METHODS, Method

log = logging.getLogger(__name__)

WEIGHTS = "method.safetensors"
META = "method.json"


def backbone_fingerprint(backbone: Any) -> dict[str, Any]:
    """What a saved method must agree with: family, number of layers, hidden size."""
    bb = backbone
    return {"family": bb.spec.name, "num_layers": bb.num_layers, "hidden_size": bb.hidden_size}


def save_method(method: Method, out_dir: str | Path) -> Path:
    """Write ``method.safetensors`` + ``method.json`` into ``out_dir``; returns the directory."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = method.own_parameters()
    tensors = {k: p.detach().to("cpu").contiguous() for k, p in params.items()}
    meta = {
        "name": method.name,
        "config": to_dict(method.cfg),
        "backbone": backbone_fingerprint(_backbone_of(method)),
        "shapes": {k: list(t.shape) for k, t in tensors.items()},
    }
    if hasattr(method, "extra_state"):  # e.g. SpectralFT's checksums of the recomputed frozen SVD
        meta["extra_state"] = method.extra_state()
    save_file(tensors, str(out / WEIGHTS), metadata={"method": method.name})
    (out / META).write_text(json.dumps(meta, indent=2) + "\n")
    log.info("saved method %s (%d tensors, %d values) to %s", method.name, len(tensors), _count(tensors), out)
    return out


def read_method_meta(path: str | Path) -> dict[str, Any]:
    """The parsed ``method.json`` of a saved method directory."""
    meta_path = Path(path) / META
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"{meta_path} not found: not a saved method directory (needs {META} and {WEIGHTS})"
        )
    return json.loads(meta_path.read_text())


def load_method(path: str | Path, backbone: Any) -> Method:
    """Rebuild the method saved in ``path`` on ``backbone`` and load its parameters strictly."""
    path = Path(path)
    meta = read_method_meta(path)
    _check_fingerprint(meta["backbone"], backbone_fingerprint(backbone), path)
    cfg = parse_named(METHODS, meta["config"], where=f"{path / META}:config")
    method = METHODS.build(cfg.name, cfg, backbone)
    if "extra_state" in meta and hasattr(method, "check_extra_state"):
        method.check_extra_state(meta["extra_state"])
    tensors = load_file(str(path / WEIGHTS))
    params = method.own_parameters()
    missing, unexpected = sorted(set(params) - set(tensors)), sorted(set(tensors) - set(params))
    if missing or unexpected:
        raise ValueError(
            f"{path / WEIGHTS} does not match method {cfg.name!r}: missing {missing[:5]} "
            f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)})"
        )
    bad = [
        f"{k}: saved {list(t.shape)} vs built {list(params[k].shape)}"
        for k, t in tensors.items()
        if t.shape != params[k].shape
    ]
    if bad:
        detail = "; ".join(bad[:5])
        raise ValueError(f"{path / WEIGHTS}: tensor shapes differ from the built method: {detail}")
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(tensors[k].to(dtype=p.dtype, device=p.device))
    log.info("loaded method %s from %s", cfg.name, path)
    return method


def _check_fingerprint(saved: dict[str, Any], actual: dict[str, Any], path: Path) -> None:
    diffs = [
        f"{k}: saved {saved.get(k)!r}, backbone has {v!r}" for k, v in actual.items() if saved.get(k) != v
    ]
    if diffs:
        raise ValueError(
            f"the method in {path} was trained on a different backbone ({'; '.join(diffs)}); "
            f"load it into a {saved.get('family')} backbone with {saved.get('num_layers')} layers and "
            f"hidden size {saved.get('hidden_size')}"
        )


def _backbone_of(method: Method) -> Any:
    backbone = getattr(method, "backbone", None)
    if backbone is None:
        raise TypeError(
            f"method {method.name!r} has no .backbone attribute; save_method needs it for the fingerprint"
        )
    return backbone


def _count(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() for t in tensors.values())
