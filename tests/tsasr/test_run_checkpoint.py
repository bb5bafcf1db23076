"""TS-ASR run checkpoints go through spkpeft.train.checkpoint: atomic, no pickle, and a stopped run
resumes to exactly the weights of a run that was never stopped."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from spkpeft.train import checkpoint as ck
from spkpeft.tsasr import run as tsrun
from spkpeft.tsasr.model import ModelConfig, TSWhisper
from spkpeft.tsasr.prompts import PromptConfig
from spkpeft.tsasr.run import resume_checkpoint, write_checkpoint


def _model_and_optim(path) -> tuple[TSWhisper, torch.optim.Optimizer, object]:  # noqa: ANN001
    model = TSWhisper.from_config(ModelConfig(whisper=str(path), prompts=PromptConfig(length=4)), 12)
    opt = torch.optim.AdamW(model.trainable_parameters().values(), lr=1e-3)
    return model, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5**s)


def test_checkpoint_round_trip_in_the_shared_format(tiny_whisper, tmp_path):
    model, opt, sched = _model_and_optim(tiny_whisper)
    gen = torch.Generator().manual_seed(3)
    for step in (3, 7):
        sum(p.square().sum() for p in model.trainable_parameters().values()).backward()
        opt.step()
        sched.step()
        torch.randperm(10, generator=gen)  # the loader moved on
        write_checkpoint(tmp_path, model, opt, sched, step=step, epoch=step // 3, loader_rng=gen)
    assert [p.name for p in ck.list_checkpoints(tmp_path / "checkpoints")] == ["step-7"]  # only the newest
    next_order = torch.randperm(10, generator=gen)
    rand = torch.rand(3)

    model2, opt2, sched2 = _model_and_optim(tiny_whisper)
    gen2 = torch.Generator().manual_seed(99)
    assert resume_checkpoint(tmp_path, model2, opt2, sched2, gen2) == (7, 2)
    for n, p in model.trainable_parameters().items():
        assert torch.equal(p, model2.trainable_parameters()[n]), n
    for i, st in opt.state_dict()["state"].items():
        assert all(torch.equal(v, opt2.state_dict()["state"][i][k]) for k, v in st.items())
    assert sched2.last_epoch == 2 and opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert torch.equal(torch.randperm(10, generator=gen2), next_order)  # same batches next
    assert torch.equal(torch.rand(3), rand)  # same global RNG stream (dropout, ...)


def test_no_checkpoint_starts_at_zero(tiny_whisper, tmp_path):
    model, opt, sched = _model_and_optim(tiny_whisper)
    assert resume_checkpoint(tmp_path, model, opt, sched, torch.Generator()) == (0, 0)


def test_pickled_state_in_an_old_tsasr_checkpoint_is_not_loaded(tmp_path, code_payload):
    payload, marker = code_payload
    old = tmp_path / "run" / tsrun.OLD_CKPT
    old.mkdir(parents=True)
    torch.save({"opt": payload, "step": 1, "epoch": 0}, old / "state.pt")
    with pytest.raises(ValueError, match="earlier spkpeft version.*can run code"):
        resume_checkpoint(tmp_path / "run", None, None, None, torch.Generator())
    assert not marker.exists()


def test_interrupted_run_resumes_to_the_uninterrupted_weights(
    tiny_whisper, mixtures, tmp_path, monkeypatch, caplog
):  # noqa: E501
    """Stop a 3-epoch run right after its first checkpoint (as a kill would), rerun it: the finished
    weights equal, bit for bit, those of the same run never stopped (same batches, optimizer, schedule)."""
    import logging

    from spkpeft.tsasr import train as tstrain
    from spkpeft.tsasr.config import load_config

    data = {
        "model": {"whisper": str(tiny_whisper), "prompts": {"length": 2}},
        "data": {"train": str(mixtures)},
        "optim": {"batch_size": 4, "epochs": 3, "lr": 1e-2, "warmup_steps": 2},
    }
    whole = tstrain.train(load_config(None, data=data), tmp_path / "whole")

    class Killed(Exception):
        pass

    def write_then_die(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        write_checkpoint(*args, **kwargs)
        raise Killed

    monkeypatch.setattr(tstrain, "write_checkpoint", write_then_die)
    with pytest.raises(Killed):
        tstrain.train(load_config(None, data=data), tmp_path / "stopped")
    assert not (tmp_path / "stopped" / "model.safetensors").exists()
    monkeypatch.undo()
    caplog.set_level(logging.INFO, logger="spkpeft")
    resumed = tstrain.train(load_config(None, data=data), tmp_path / "stopped")

    a, b = load_file(str(whole / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert a.keys() == b.keys() and a
    for n in a:
        assert torch.equal(a[n], b[n]), n
    assert any("resuming" in r.getMessage() and "step 2 (epoch 1)" in r.getMessage() for r in caplog.records)
