"""A run directory: ``tsasr.yaml`` (the config, prompts folded), ``model.safetensors`` (only what the
method trained), ``logs/metrics.jsonl`` and ``checkpoints/step-N/`` (the speaker trainer's checkpoint
format, :mod:`spkpeft.train.checkpoint`: trainable weights, optimizer, scheduler, RNG states, the position
in the data; nothing is unpickled; the newest is kept, so a finished run can go on with ``--resume``
and more epochs). Writes are atomic: files go to a temporary name first and are renamed into place."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from spkpeft.atomic import replace_file
from spkpeft.config import save_yaml
from spkpeft.train import checkpoint as ck
from spkpeft.train.run_dir import RunDir
from spkpeft.tsasr.config import TSASRConfig, load_config
from spkpeft.tsasr.model import TSWhisper

log = logging.getLogger(__name__)

CONFIG, WEIGHTS = "tsasr.yaml", "model.safetensors"
OLD_CKPT = "checkpoint"  # the layout of earlier versions, refused


def save_trainable(model: TSWhisper, path: Path) -> None:
    state = {n: p.detach().cpu().contiguous() for n, p in model.trainable_parameters().items()}
    replace_file(path, lambda tmp: save_file(state, str(tmp)))


def load_trainable(model: TSWhisper, path: Path) -> None:
    """Load a :func:`save_trainable` file; every trainable parameter must be in it and nothing else."""
    _copy_trainable(model, load_file(str(path)), path)


def _copy_trainable(model: TSWhisper, state: dict[str, torch.Tensor], path: Path) -> None:
    # runs saved before LoRA went through spkpeft.methods.lora: peft adapter "default", not "lora"
    state = {re.sub(r"\.(lora_[AB])\.default\.", r".\1.lora.", k): v for k, v in state.items()}
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
    replace_file(run_dir / CONFIG, lambda tmp: save_yaml(cfg, tmp))


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


def write_checkpoint(
    run_dir: Path, model: TSWhisper, opt: Any, sched: Any, step: int, epoch: int, batch: int, acc: Any
) -> Path:
    """Write ``RUN/checkpoints/step-N`` through :func:`spkpeft.train.checkpoint.save_checkpoint` (atomic,
    no pickle; every process's RNG state, the AMP scaler) and keep only that one; every process calls it,
    the main one writes. ``(epoch, batch)`` is where training goes on: the data order is a function of
    the seed and the epoch (:class:`~spkpeft.train.sampler.EpochBatchSampler`), so a resumed run draws
    the same batches as one that was never stopped (with the same number of processes)."""
    from accelerate.utils import gather_object

    rngs = gather_object([ck.rng_state()])
    path = RunDir(run_dir).checkpoint(step)
    if acc.is_main_process:
        state = {"step": step, "epoch": epoch, "batch": batch, "world_size": acc.num_processes}
        tensors = {n: p.detach().cpu().contiguous() for n, p in model.trainable_parameters().items()}
        ck.save_checkpoint(path, tensors, opt, sched, state, rngs, acc.scaler)
        ck.prune_checkpoints(RunDir(run_dir).checkpoints, keep=1)
    acc.wait_for_everyone()
    return path


def resume_checkpoint(
    checkpoint: Path, model: TSWhisper, opt: Any, sched: Any, acc: Any
) -> tuple[int, int, int]:
    """Restore ``checkpoint`` (a ``RUN/checkpoints/step-N`` directory): weights, optimizer, scheduler, AMP
    scaler and this process's RNG state. Returns (step, epoch, batch) to go on from."""
    loaded = ck.load_checkpoint(checkpoint)
    _copy_trainable(model, loaded["trainable"], checkpoint)
    opt.load_state_dict(loaded["optimizer"])
    # the schedule's shape follows the config now given (rerun with more epochs: decay over the new total);
    # the checkpoint gives its position and base rates
    sched_state = loaded["scheduler"]
    sched.load_state_dict({**sched_state, "lr_lambdas": [None] * len(sched_state.get("lr_lambdas", []))})
    ck.restore_runtime(loaded, acc)
    st = loaded["state"]
    written_by = st.get("world_size", 1)
    if written_by != acc.num_processes:
        log.warning("resuming with %d processes, checkpoint written by %d: the data order changes",
                    acc.num_processes, written_by)  # fmt: skip
    return int(st["step"]), int(st["epoch"]), int(st.get("batch", 0))  # no batch: earlier versions


def refuse_old_layout(run_dir: Path) -> None:
    """Refuse a run directory holding the checkpoint layout of earlier versions (see :data:`OLD_CKPT`)."""
    old = run_dir / OLD_CKPT
    if old.is_dir():
        raise ValueError(
            f"{old} is a checkpoint of an earlier spkpeft version (its own TS-ASR layout, maybe pickled "
            f"state.pt); it is not read, as unpickling a file can run code. Delete {old} to train {run_dir} "
            "from the start"
        )
