"""Training checkpoints: trainable parameters, optimiser, scheduler, loop position and RNG states.

A checkpoint is a directory ``RUN/checkpoints/step-N/`` written under a temporary name and renamed into
place, so a run killed while writing never leaves a half checkpoint that ``--resume`` would pick up::

    step-N/
      trainable.safetensors   what training can change: method parameters, back-end and loss-head state
                              (frozen backbone weights are not copied: they come from the backbone)
      optimizer.pt            optimizer.state_dict()
      scheduler.pt            scheduler.state_dict()
      state.json              loop position: stage, epoch, batch in epoch, global step, ...
      rng.pt                  python / numpy / torch (CPU and CUDA) RNG states, one entry per process
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

log = logging.getLogger(__name__)

_STEP_DIR = re.compile(r"^step-(\d+)$")
_FILES = ("trainable.safetensors", "optimizer.pt", "scheduler.pt", "state.json")


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    directory: Path,
    tensors: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict[str, Any],
    rng_states: list[dict[str, Any]],
    scaler: Any = None,
) -> Path:
    """Write a checkpoint atomically to ``directory`` (``.../step-N``); returns it.

    ``rng_states`` holds one entry per process (gathered by the caller), so a resumed distributed run
    restores every rank's random stream.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".tmp-{directory.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file(tensors, str(tmp / "trainable.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(rng_states, tmp / "rng.pt")
    if scaler is not None:
        torch.save(scaler.state_dict(), tmp / "scaler.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(tmp, directory)
    log.info("checkpoint written: %s", directory)
    return directory


def load_checkpoint(directory: Path) -> dict[str, Any]:
    """Read a checkpoint dir: ``trainable``, ``optimizer``, ``scheduler``, ``scaler``, ``state``, ``rng``."""
    directory = Path(directory)
    missing = [f for f in _FILES if not (directory / f).is_file()]
    if missing:
        raise FileNotFoundError(f"incomplete checkpoint {directory}: missing {', '.join(missing)}")
    return {
        "trainable": load_file(str(directory / "trainable.safetensors")),
        "optimizer": torch.load(directory / "optimizer.pt", map_location="cpu", weights_only=False),
        "scheduler": torch.load(directory / "scheduler.pt", map_location="cpu", weights_only=False),
        "rng": _maybe_load(directory / "rng.pt"),
        "scaler": _maybe_load(directory / "scaler.pt"),
        "state": json.loads((directory / "state.json").read_text()),
    }


def _maybe_load(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else None


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under ``root`` (``step-N`` dirs), oldest first by step."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found) if all((p / f).is_file() for f in _FILES)]


def latest_checkpoint(root: Path) -> Path | None:
    ckpts = list_checkpoints(root)
    return ckpts[-1] if ckpts else None


def prune_checkpoints(root: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints (``keep`` <= 0 keeps all)."""
    if keep <= 0:
        return
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
        log.debug("removed old checkpoint %s", old)
