"""Optimiser groups, LR schedules, checkpoints and the resumable sampler, on small torch modules."""

from __future__ import annotations

import copy
import math
import os
import pickle
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from spkpeft.config import ConfigError
from spkpeft.train import checkpoint as ck
from spkpeft.train.optim import OptimConfig, build_optimizer, build_scheduler, lr_factor, param_groups
from spkpeft.train.sampler import EpochBatchSampler


def _groups() -> dict[str, list[nn.Parameter]]:
    a, b = nn.Linear(3, 3), nn.Linear(3, 2)
    return {"adapter": list(a.parameters()), "backend": list(b.parameters())}


def test_param_groups_take_their_own_lr_and_default():
    cfg = OptimConfig(lr={"adapter": 1e-4, "default": 5e-4})
    groups = param_groups(_groups(), cfg)
    assert {g["name"]: g["lr"] for g in groups} == {"adapter": 1e-4, "backend": 5e-4}
    opt = build_optimizer(groups, cfg)
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 5e-4]


def test_param_groups_reject_typo_and_skip_frozen():
    with pytest.raises(ConfigError, match="adaptr.*adapter, backend"):
        param_groups(_groups(), OptimConfig(lr={"adaptr": 1e-4, "default": 1e-3}))
    g = _groups()
    for p in g["adapter"]:
        p.requires_grad_(False)
    assert [x["name"] for x in param_groups(g, OptimConfig())] == ["backend"]
    with pytest.raises(ConfigError, match="no entry for parameter group 'backend'"):
        param_groups(_groups(), OptimConfig(lr={"adapter": 1e-3}))


def test_lr_may_name_a_known_group_the_model_lacks():
    cfg = OptimConfig(lr={"prompt": 1e-2, "gate": 1e-2, "default": 1e-3})  # no prompt/gate in _groups()
    with pytest.raises(ConfigError, match=r"unknown parameter group\(s\) \['prompt', 'gate'\]"):
        param_groups(_groups(), cfg)
    groups = param_groups(_groups(), cfg, known=["prompt", "gate", "lora"])
    assert {g["name"]: g["lr"] for g in groups} == {"adapter": 1e-3, "backend": 1e-3}


REFERENCE = {  # torch's own optimiser with the settings of the config below
    "adam": lambda ps, lr: torch.optim.Adam(ps, lr=lr, betas=(0.8, 0.95), weight_decay=0.01),
    "adamw": lambda ps, lr: torch.optim.AdamW(ps, lr=lr, betas=(0.8, 0.95), weight_decay=0.01),
    "sgd": lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.5, nesterov=True, weight_decay=0.01),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_optimizer_kinds_move_weights_as_the_config_says(name):
    """Two steps of the built optimiser move every group exactly as torch's own optimiser given the
    config's kind, per-group lr, betas, weight decay, momentum and Nesterov flag (dropping any of them,
    or building the wrong kind, moves the weights differently)."""
    cfg = OptimConfig(
        optimizer=name,
        lr={"adapter": 0.1, "default": 0.05},
        betas=[0.8, 0.95],
        weight_decay=0.01,
        momentum=0.5,
        nesterov=True,
    )
    ours = _groups()
    theirs = copy.deepcopy(ours)
    opt = build_optimizer(param_groups(ours, cfg), cfg)
    refs = [REFERENCE[name](theirs["adapter"], 0.1), REFERENCE[name](theirs["backend"], 0.05)]
    for step in range(2):  # momentum and Adam's moments matter from the second step on
        for p, q in zip([*ours["adapter"], *ours["backend"]], [*theirs["adapter"], *theirs["backend"]]):
            p.grad = torch.cos(p.detach() * (step + 3))
            q.grad = p.grad.clone()
        opt.step()
        for r in refs:
            r.step()
    for p, q in zip([*ours["adapter"], *ours["backend"]], [*theirs["adapter"], *theirs["backend"]]):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_schedule_warmup_then_cosine_to_final():
    total, warm = 100, 10
    f = [lr_factor(s, total, warm, "cosine", 0.1) for s in range(total)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(f[:9], f[1:10]))  # rising during warm-up
    assert all(a >= b for a, b in zip(f[10:], f[11:]))  # then decaying
    assert f[-1] == pytest.approx(0.1)
    mid = lr_factor(10 + 89 // 2, total, warm, "cosine", 0.1)
    assert 0.5 < mid < 0.6


def test_schedule_exponential_and_scheduler_applies_per_group():
    f = [lr_factor(s, 11, 0, "exponential", 0.01) for s in range(11)]
    assert f[0] == 1.0 and f[-1] == pytest.approx(0.01) and f[5] == pytest.approx(0.1)
    cfg = OptimConfig(lr={"adapter": 1e-4, "backend": 1e-3}, warmup_fraction=0.5, final_lr_ratio=0.1)
    opt = build_optimizer(param_groups(_groups(), cfg), cfg)
    sched = build_scheduler(opt, cfg, total_steps=4)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.5e-4, 0.5e-3])
    for _ in range(3):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-5, 1e-4])


def test_optim_config_validation():
    for bad in (
        dict(optimizer="rmsprop"),
        dict(schedule="step"),
        dict(final_lr_ratio=0.0),
        dict(lr={"default": -1.0}),
    ):
        with pytest.raises(ConfigError):
            OptimConfig(**bad).validate()


def _one_step(tmp_path: Path, step: int = 2) -> tuple[nn.Linear, torch.optim.Optimizer, Any, Path]:
    torch.manual_seed(0)
    lin = nn.Linear(4, 2)
    cfg = OptimConfig()
    opt = build_optimizer(param_groups({"backend": list(lin.parameters())}, cfg), cfg)
    sched = build_scheduler(opt, cfg, 10)
    lin(torch.randn(3, 4)).sum().backward()
    opt.step()
    sched.step()
    tensors = {k: v.detach().clone() for k, v in lin.state_dict().items()}
    path = ck.save_checkpoint(tmp_path / f"step-{step}", tensors, opt, sched, {"global_step": step}, [])
    return lin, opt, sched, path


def test_checkpoint_roundtrip_atomic_and_pruned(tmp_path):
    lin, opt, sched, _ = _one_step(tmp_path)
    cfg = OptimConfig()
    tensors = {k: v.detach().clone() for k, v in lin.state_dict().items()}
    for step in (2, 4, 6):
        ck.save_checkpoint(
            tmp_path / f"step-{step}", tensors, opt, sched, {"global_step": step}, [ck.rng_state()]
        )
    ck.prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == ["step-4", "step-6"]
    (tmp_path / "step-9").mkdir()  # a directory without the files (interrupted write) is not a checkpoint
    assert ck.latest_checkpoint(tmp_path).name == "step-6"
    assert not list(tmp_path.glob(".tmp-*"))
    got = ck.load_checkpoint(tmp_path / "step-6")
    assert all(torch.equal(got["trainable"][k], v) for k, v in tensors.items())
    assert got["state"]["global_step"] == 6
    opt2 = build_optimizer(param_groups({"backend": list(nn.Linear(4, 2).parameters())}, cfg), cfg)
    opt2.load_state_dict(got["optimizer"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    with pytest.raises(FileNotFoundError, match="missing"):
        ck.load_checkpoint(tmp_path / "step-9")


def test_rng_state_roundtrip():
    state = ck.rng_state()
    a = (torch.rand(3), math.floor(__import__("random").random() * 1e9))
    ck.set_rng_state(state)
    b = (torch.rand(3), math.floor(__import__("random").random() * 1e9))
    assert torch.equal(a[0], b[0]) and a[1] == b[1]


def test_sampler_shards_resumes_and_depends_on_epoch():
    full = EpochBatchSampler(20, 3, seed=1)
    assert len(full) == 6
    ranks = [EpochBatchSampler(20, 3, seed=1, rank=r, world_size=2) for r in range(2)]
    assert len(ranks[0]) == 3
    b0, b1 = list(ranks[0]), list(ranks[1])
    flat = [i for pair in zip(b0, b1) for batch in pair for i in batch]
    assert flat == [i for batch in list(full)[:6] for i in batch][:18]  # same global order, sliced by rank
    assert not set(sum(b0, [])) & set(sum(b1, []))
    full.set_epoch(0, start_batch=4)
    assert list(full) == list(EpochBatchSampler(20, 3, seed=1))[4:]
    e0 = list(EpochBatchSampler(20, 3, seed=1))
    s = EpochBatchSampler(20, 3, seed=1)
    s.set_epoch(1)
    assert list(s) != e0
    with pytest.raises(ValueError, match="fewer than one global batch"):
        EpochBatchSampler(5, 3, world_size=2)


def test_checkpoint_holds_no_pickle_and_restores_state_exactly(tmp_path):
    random.seed(3)
    np.random.seed(4)
    rng = ck.rng_state()
    expect = (random.random(), np.random.rand(), torch.rand(2))
    lin, opt, sched, _ = _one_step(tmp_path)
    ck.save_checkpoint(tmp_path / "step-3", dict(lin.state_dict()), opt, sched, {}, [rng, rng])
    files = {p.name for p in (tmp_path / "step-3").iterdir()}
    assert not [f for f in files if f.endswith((".pt", ".pkl", ".bin"))], files
    got = ck.load_checkpoint(tmp_path / "step-3")
    assert len(got["rng"]) == 2
    ck.set_rng_state(got["rng"][1])
    assert (random.random(), np.random.rand()) == expect[:2] and torch.equal(torch.rand(2), expect[2])
    opt2 = build_optimizer(
        param_groups({"backend": list(nn.Linear(4, 2).parameters())}, OptimConfig()), OptimConfig()
    )
    opt2.load_state_dict(got["optimizer"])
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for i, st in a["state"].items():
        assert all(
            torch.equal(v, b["state"][i][k]) and v.dtype == b["state"][i][k].dtype for k, v in st.items()
        )
    assert got["scheduler"] == sched.state_dict()


def test_crafted_pickle_in_a_checkpoint_is_never_run(tmp_path, code_payload):
    payload, marker = code_payload
    _, _, _, path = _one_step(tmp_path)
    for name in ("rng.pt", "optimizer.pt", "scheduler.pt", "scaler.pt"):
        torch.save({"x": payload}, path / name)  # planted next to the real parts
    ck.load_checkpoint(path)
    old = tmp_path / "old" / "step-5"  # a checkpoint in the earlier, pickled layout
    old.mkdir(parents=True)
    for name in ("optimizer.pt", "scheduler.pt", "rng.pt"):
        torch.save({"x": payload}, old / name)
    (old / "state.json").write_text("{}")
    save_file({"w": torch.zeros(1)}, str(old / "trainable.safetensors"))
    with pytest.raises(ValueError, match="earlier spkpeft version.*can run code"):
        ck.latest_checkpoint(old.parent)
    with pytest.raises(ValueError, match="earlier spkpeft version"):
        ck.load_checkpoint(old)
    (path / "rng.safetensors").write_bytes(pickle.dumps(payload))  # pickle under the new name
    with pytest.raises(ValueError, match="not a readable state file"):
        ck.load_checkpoint(path)
    assert not marker.exists()


def test_partial_writes_of_dead_processes_are_removed(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead = int(proc.stdout)
    stale = tmp_path / f".tmp-step-4-{dead}"
    live = tmp_path / f".tmp-step-4-{os.getppid()}"  # another process still writing
    for d in (stale, live):
        d.mkdir()
        (d / "optimizer.safetensors").write_bytes(b"x" * 1000)
    _one_step(tmp_path, step=6)
    assert not stale.exists() and live.exists()
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == ["step-6"]


def test_disk_full_during_a_write_is_a_clear_error_and_leaves_no_partial(tmp_path, monkeypatch):
    lin, opt, sched, first = _one_step(tmp_path)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck, "save_state", full)
    with pytest.raises(ck.CheckpointWriteError, match=r"step-4 .*No space left.*MiB free.*--resume"):
        ck.save_checkpoint(tmp_path / "step-4", dict(lin.state_dict()), opt, sched, {}, [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-2"]
    assert ck.latest_checkpoint(tmp_path) == first


def test_group_sampler_keeps_each_group_in_one_batch_and_resumes():
    from spkpeft.train.sampler import GroupBatchSampler

    groups = [[2 * g, 2 * g + 1] for g in range(10)]
    s = GroupBatchSampler(groups, 4, seed=1)
    assert len(s) == 5  # 10 groups, 2 per batch
    batches = list(s)
    assert all(
        len(b) == 4 and b[0] + 1 == b[1] and b[2] + 1 == b[3] and b[0] % 2 == 0 == b[2] % 2 for b in batches
    )
    assert sorted(i for b in batches for i in b) == list(range(20))  # every item once per epoch
    # the order is EpochBatchSampler's over the groups, so it resumes and shards like it
    assert [[i // 2 for i in b[::2]] for b in batches] == list(EpochBatchSampler(10, 2, seed=1))
    s.set_epoch(0, start_batch=3)
    assert list(s) == batches[3:]
    s.set_epoch(1)
    assert list(s) != batches
    ranks = [list(GroupBatchSampler(groups, 2, seed=1, rank=r, world_size=2)) for r in range(2)]
    assert not {i for b in ranks[0] for i in b} & {i for b in ranks[1] for i in b}
    with pytest.raises(ValueError, match="optim.batch_size=3 must be a multiple of the group size 2"):
        GroupBatchSampler(groups, 3, batch_key="optim.batch_size")
    with pytest.raises(ValueError, match="one size"):
        GroupBatchSampler([[0, 1], [2]], 2)
