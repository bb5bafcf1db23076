"""Training checkpoints: trainable parameters, optimiser, scheduler, loop position and RNG states.

A checkpoint is a directory ``RUN/checkpoints/step-N/`` written under a temporary name and renamed into
place, so a run killed while writing never leaves a half checkpoint that ``--resume`` would pick up::

    step-N/
      trainable.safetensors   what training can change: method parameters, back-end and loss-head state
                              (frozen backbone weights are not copied: they come from the backbone)
      optimizer.safetensors   optimizer.state_dict()   \
      scheduler.safetensors   scheduler.state_dict()    | tensors + JSON structure (spkpeft.safe_state):
      rng.safetensors         python / numpy / torch    | nothing is unpickled, so a crafted checkpoint
                              (CPU and CUDA) RNG states,| cannot run code on --resume
                              one entry per process     |
      scaler.safetensors      AMP grad-scaler state    /  (fp16 only)
      state.json              loop position: stage, epoch, batch in epoch, global step, ...

Partial writes (``.tmp-step-N-PID-*``, and ``.old-step-N-PID-*`` when a step is written again) of processes
that no longer run are removed before the next write; a failed write (disk full) removes its own partial
directory and raises :class:`CheckpointWriteError`.
Checkpoints of spkpeft versions that pickled their state (``optimizer.pt``) are refused, not unpickled.
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

from spkpeft.atomic import replace_dir
from spkpeft.safe_state import load_state, save_state

log = logging.getLogger(__name__)

_STEP_DIR = re.compile(r"^step-(\d+)$")
_TMP_DIR = re.compile(r"^\.(?:tmp|old)-step-\d+-(\d+)(?:-\w+)?$")  # spkpeft.atomic names
_FILES = ("trainable.safetensors", "optimizer.safetensors", "scheduler.safetensors", "state.json")
_PICKLED = "optimizer.pt"  # what checkpoints of earlier versions hold instead


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, ...); the partial write was removed."""


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
    remove_partial(directory.parent)

    def write(tmp: Path) -> None:
        save_file(tensors, str(tmp / "trainable.safetensors"))
        save_state(optimizer.state_dict(), tmp / "optimizer.safetensors")
        save_state(scheduler.state_dict(), tmp / "scheduler.safetensors")
        save_state(rng_states, tmp / "rng.safetensors")
        if scaler is not None:
            save_state(scaler.state_dict(), tmp / "scaler.safetensors")
        (tmp / "state.json").write_text(json.dumps(state, indent=1))

    try:
        replace_dir(directory, write)
    except Exception as e:
        free = shutil.disk_usage(directory.parent).free / 2**20
        raise CheckpointWriteError(
            f"could not write checkpoint {directory} ({e}; {free:.0f} MiB free on that disk); the partial "
            f"write was removed and earlier checkpoints are intact: free space, then --resume"
        ) from e
    log.info("checkpoint written: %s", directory)
    return directory


def restore_runtime(loaded: dict[str, Any], acc: Any) -> None:
    """The AMP scaler and this process's RNG state of a :func:`load_checkpoint` result (``acc``: the
    run's ``accelerate.Accelerator``)."""
    if loaded.get("scaler") is not None and acc.scaler is not None:
        acc.scaler.load_state_dict(loaded["scaler"])
    rng = loaded.get("rng") or []
    if acc.process_index < len(rng):
        set_rng_state(rng[acc.process_index])


def remove_partial(root: Path) -> list[Path]:
    """Delete the partial checkpoint writes (``.tmp-step-N-PID``) under ``root`` whose process is gone;
    returns them. A full fine-tuning checkpoint holds a model-sized optimizer state, so they add up."""
    removed = []
    for p in Path(root).iterdir() if Path(root).is_dir() else ():
        m = _TMP_DIR.match(p.name)
        if m and p.is_dir() and not _alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
            log.info("removed partial checkpoint write %s", p)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def load_checkpoint(directory: Path) -> dict[str, Any]:
    """Read a checkpoint dir: ``trainable``, ``optimizer``, ``scheduler``, ``scaler``, ``state``, ``rng``."""
    directory = Path(directory)
    _refuse_pickled(directory)
    missing = [f for f in _FILES if not (directory / f).is_file()]
    if missing:
        raise FileNotFoundError(f"incomplete checkpoint {directory}: missing {', '.join(missing)}")
    return {
        "trainable": load_file(str(directory / "trainable.safetensors")),
        "optimizer": load_state(directory / "optimizer.safetensors"),
        "scheduler": load_state(directory / "scheduler.safetensors"),
        "rng": _maybe_load(directory / "rng.safetensors"),
        "scaler": _maybe_load(directory / "scaler.safetensors"),
        "state": json.loads((directory / "state.json").read_text()),
    }


def _maybe_load(path: Path) -> Any:
    return load_state(path) if path.is_file() else None


def _refuse_pickled(directory: Path) -> None:
    if (directory / _PICKLED).is_file() and not (directory / "optimizer.safetensors").is_file():
        raise ValueError(
            f"{directory} is a checkpoint of an earlier spkpeft version (pickled {_PICKLED}); it is not "
            "read because unpickling a file can run code. Start the run again in a new train.output_dir"
        )


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under ``root`` (``step-N`` dirs), oldest first by step."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found) if all((p / f).is_file() for f in _FILES)]


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint under ``root`` (None if none); raises ValueError when ``root``
    holds only checkpoints of an earlier version (pickled state, see :func:`load_checkpoint`)."""
    ckpts = list_checkpoints(root)
    if not ckpts and Path(root).is_dir():
        for p in Path(root).iterdir():
            if _STEP_DIR.match(p.name):
                _refuse_pickled(p)
    return ckpts[-1] if ckpts else None


def prune_checkpoints(root: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints (``keep`` <= 0 keeps all)."""
    if keep <= 0:
        return
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
        log.debug("removed old checkpoint %s", old)
