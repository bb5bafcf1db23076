"""A run directory: ``tsasr.yaml`` (the config, prompts folded), ``model.safetensors`` (only what the
method trained) and, while training, ``checkpoint/`` (optimizer state for resuming: ``model.safetensors``
and ``state.safetensors``, see :mod:`spkpeft.safe_state`; nothing is unpickled). Writes are atomic: files
go to a temporary name first and are renamed into place."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from spkpeft.config import save_yaml
from spkpeft.safe_state import load_state, save_state
from spkpeft.tsasr.config import TSASRConfig, load_config
from spkpeft.tsasr.model import TSWhisper

CONFIG, WEIGHTS, CKPT = "tsasr.yaml", "model.safetensors", "checkpoint"


def save_trainable(model: TSWhisper, path: Path) -> None:
    state = {n: p.detach().cpu().contiguous() for n, p in model.trainable_parameters().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp))
    os.replace(tmp, path)


def load_trainable(model: TSWhisper, path: Path) -> None:
    """Load a :func:`save_trainable` file; every trainable parameter must be in it and nothing else."""
    state = load_file(str(path))
    own = model.trainable_parameters()
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or extra:
        raise ValueError(f"{path} does not match the model: missing {missing[:5]}, unexpected {extra[:5]}")
    with torch.no_grad():
        for n, p in own.items():
            if p.shape != state[n].shape:
                raise ValueError(
                    f"{path}: {n} has shape {tuple(state[n].shape)}, model wants {tuple(p.shape)}"
                )
            p.copy_(state[n])


def save_run(model: TSWhisper, cfg: TSASRConfig, run_dir: Path) -> None:
    """Fold the reparameterisation, then write config and trained weights."""
    if model.prompts is not None:
        model.prompts.fold()
        cfg.model.prompts.reparam = False
    run_dir.mkdir(parents=True, exist_ok=True)
    save_trainable(model, run_dir / WEIGHTS)
    tmp = run_dir / (CONFIG + ".tmp")
    save_yaml(cfg, tmp)
    os.replace(tmp, run_dir / CONFIG)


def load_run(run_dir: str | Path) -> tuple[TSWhisper, TSASRConfig]:
    """A finished run -> (model, config); the speaker embedding size is read from the weights."""
    run = Path(run_dir)
    if not (run / CONFIG).is_file() or not (run / WEIGHTS).is_file():
        raise FileNotFoundError(f"{run} is not a finished tsasr run (needs {CONFIG} and {WEIGHTS})")
    cfg = load_config(run / CONFIG)
    with safe_open(str(run / WEIGHTS), "pt") as f:
        key = "prompts.speaker_proj.weight"
        speaker_dim = f.get_slice(key).get_shape()[1] if key in f.keys() else 1
    model = TSWhisper.from_config(cfg.model, speaker_dim)
    load_trainable(model, run / WEIGHTS)
    return model, cfg


def save_checkpoint(run_dir: Path, model: TSWhisper, opt, sched, step: int, epoch: int) -> None:  # noqa: ANN001
    tmp = run_dir / (CKPT + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_trainable(model, tmp / WEIGHTS)
    save_state(
        {"opt": opt.state_dict(), "sched": sched.state_dict(), "step": step, "epoch": epoch},
        tmp / "state.safetensors",
    )
    final = run_dir / CKPT
    old = run_dir / (CKPT + ".old")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(run_dir: Path, model: TSWhisper, opt, sched) -> tuple[int, int]:  # noqa: ANN001
    """Restore a checkpoint if there is one; returns (step, epoch) to resume from ((0, 0) if none)."""
    ck = run_dir / CKPT
    if (ck / "state.pt").is_file() and not (ck / "state.safetensors").is_file():
        raise ValueError(
            f"{ck} was written by an earlier spkpeft version (pickled state.pt); it is not read because "
            f"unpickling a file can run code. Delete {ck} to train {run_dir} from the start"
        )
    if not (ck / "state.safetensors").is_file():
        return 0, 0
    load_trainable(model, ck / WEIGHTS)
    state = load_state(ck / "state.safetensors")
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    return int(state["step"]), int(state["epoch"])
