"""Two-process data-parallel training on CPU (gloo) equals one process with the same global batch: DDP
averages the two ranks' gradients, and the sampler gives both runs the same batches.

The two ranks are forked from the test process (so they reuse its imports and start in a moment) and
join a gloo process group through the usual torchrun environment variables, exactly as under
``torchrun --nproc_per_node 2 -m spkpeft.cli train ...`` or ``accelerate launch --cpu``.
"""

from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp
from accelerate import Accelerator  # noqa: F401  (imported before the fork, so the ranks start at once)
from safetensors.torch import load_file

from spkpeft.safe_state import load_state
from spkpeft.train.experiment import load_experiment
from spkpeft.train.metrics_log import read_metrics
from spkpeft.train.trainer import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, cfg) -> None:  # noqa: ANN001
    from accelerate.state import AcceleratorState

    # a forked child must not enter an OpenMP parallel region: the thread pool it inherits from a parent
    # that already ran parallel ops is dead, and the first parallel op then waits forever
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world))  # fmt: skip
    AcceleratorState._reset_state(reset_partial_state=True)  # the parent's single-process state
    train(cfg)


def test_two_process_cpu_training_matches_single_process(tiny_corpus, tmp_path):
    common = [f"data.train_manifest={tiny_corpus}", "train.epochs=1", "train.checkpoint_every=0",
              "train.log_every=1", "method.name=adapter", "method.bottleneck=4"]  # fmt: skip
    ddp = load_experiment("tiny", [*common, "train.batch_size=2", f"train.output_dir={tmp_path / 'ddp'}"])
    mp.start_processes(_rank, args=(2, _free_port(), ddp), nprocs=2, start_method="fork")
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    single = train(
        load_experiment("tiny", [*common, "train.batch_size=4", f"train.output_dir={tmp_path / 'one'}"])
    )
    got = load_file(str(tmp_path / "ddp/checkpoints/step-3/trainable.safetensors"))
    ref = load_file(str(single / "checkpoints/step-3/trainable.safetensors"))
    assert got.keys() == ref.keys() and any(k.startswith("method/adapter") for k in ref)
    for k, v in ref.items():
        assert torch.allclose(got[k], v, atol=1e-5), f"{k} differs between 2-process and 1-process runs"
    rows = read_metrics(tmp_path / "ddp/logs/metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]  # only rank 0 logs, once per optimiser step
    assert (tmp_path / "ddp/model/model.json").is_file()
    assert len(load_state(tmp_path / "ddp/checkpoints/step-3/rng.safetensors")) == 2
