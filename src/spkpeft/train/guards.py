"""What every training loop of the toolkit (the speaker :class:`~spkpeft.train.trainer.Trainer`, the
TS-ASR loop of :mod:`spkpeft.tsasr.train`) guards the same way: its accelerator, the loss, and the run
directory it writes into.

- :func:`make_accelerator`: an ``accelerate.Accelerator`` for CPU, one GPU or many, fresh per call.
- :func:`check_finite_loss`: a NaN or infinite loss (on any process) stops the run with
  :class:`NonFiniteLossError` naming the step and the last good checkpoint, before the optimiser touches
  the weights.
- :func:`refuse_or_resume`: a run directory that holds checkpoints is continued only with ``--resume``
  (:class:`RunExistsError` otherwise); ``--resume`` without a checkpoint is an error too.
- :func:`run_dir_lock`: the run directory is locked for the whole run, by rank 0 of a distributed run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from spkpeft.train import checkpoint as ck


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


class RunExistsError(RuntimeError):
    """The output directory already holds checkpoints and ``--resume`` was not given."""


def make_accelerator(mixed_precision: str = "no", find_unused_parameters: bool = False) -> Any:
    """A fresh ``Accelerator``. ``AcceleratorState`` is a process-wide singleton that refuses a second
    mixed-precision setting; it is reset (not the ``PartialState``, which holds the process group) so that
    several runs can train in one process. Without CUDA it is a CPU accelerator, so torchrun- or
    ``accelerate launch``-started CPU processes form a gloo group."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs

    AcceleratorState._reset_state(reset_partial_state=False)
    ddp = DistributedDataParallelKwargs(find_unused_parameters=find_unused_parameters)
    cpu = not torch.cuda.is_available()
    return Accelerator(mixed_precision=mixed_precision, kwargs_handlers=[ddp], cpu=cpu)


def check_finite_loss(
    loss: torch.Tensor, acc: Any, step: int, where: str, last_checkpoint: Path | None, clip_key: str
) -> float:
    """Sum ``loss`` over the processes; raise :class:`NonFiniteLossError` if it is not finite on any.
    ``step`` is the optimiser step being taken (1-based), ``where`` says more (stage, epoch, batch),
    ``clip_key`` is the config key of the loop's gradient clip. Returns the summed loss."""
    loss_sum = acc.reduce(loss.detach().float().reshape(1), "sum")
    if not bool(torch.isfinite(loss_sum).all()):
        last = last_checkpoint or "none (no checkpoint written yet)"
        raise NonFiniteLossError(
            f"non-finite loss ({loss.item()}) at step {step} ({where}); last good checkpoint: {last}. "
            f"Resume from it with --resume after lowering the learning rate or setting {clip_key}"
        )
    return float(loss_sum.item())


def refuse_or_resume(checkpoints: Path, root: Path, resume: bool, out_key: str) -> Path | None:
    """The checkpoint to resume from (``resume``), or ``None`` for a fresh run; refuses to start a fresh
    run over a directory that holds checkpoints, and ``resume`` without one. ``out_key`` names the option
    that sets the run directory (``train.output_dir``, ``--out``)."""
    latest = ck.latest_checkpoint(checkpoints)
    if resume and latest is None:
        raise FileNotFoundError(f"--resume: no complete checkpoint under {checkpoints}")
    if not resume and latest is not None:
        raise RunExistsError(
            f"{root} already holds checkpoints ({latest.name}): pass --resume to continue it, or set "
            f"{out_key} to a new directory"
        )
    return latest


@contextlib.contextmanager
def run_dir_lock(root: Path) -> Iterator[None]:
    """Hold the run directory's lock (:func:`spkpeft.dir_lock.exclusive_dir`) for the ``with`` block, so a
    second training into it fails at once; in a torchrun / accelerate launch only rank 0 takes it."""
    from spkpeft.dir_lock import exclusive_dir

    if os.environ.get("RANK", "0") != "0":
        yield
        return
    with exclusive_dir(root, "run directory"):
        yield
