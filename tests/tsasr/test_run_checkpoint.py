"""TS-ASR run checkpoints go through spkpeft.train.checkpoint: atomic, no pickle, and a stopped run
resumes to exactly the weights of a run that was never stopped."""

from __future__ import annotations

import json
import math

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
    from spkpeft.train.guards import make_accelerator

    acc = make_accelerator()
    model, opt, sched = _model_and_optim(tiny_whisper)
    for step in (3, 7):
        sum(p.square().sum() for p in model.trainable_parameters().values()).backward()
        opt.step()
        sched.step()
        last = write_checkpoint(tmp_path, model, opt, sched, step, step // 3, 1, acc)
    assert [p.name for p in ck.list_checkpoints(tmp_path / "checkpoints")] == ["step-7"]  # only the newest
    rand = torch.rand(3)

    model2, opt2, sched2 = _model_and_optim(tiny_whisper)
    assert resume_checkpoint(last, model2, opt2, sched2, acc) == (7, 2, 1)
    assert ck.load_checkpoint(last)["state"]["world_size"] == 1
    for n, p in model.trainable_parameters().items():
        assert torch.equal(p, model2.trainable_parameters()[n]), n
    for i, st in opt.state_dict()["state"].items():
        assert all(torch.equal(v, opt2.state_dict()["state"][i][k]) for k, v in st.items())
    assert sched2.last_epoch == 2 and opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert torch.equal(torch.rand(3), rand)  # same global RNG stream (dropout, ...)


def _data(tiny_whisper, mixtures, epochs: int = 1) -> dict:  # noqa: ANN001
    return {
        "model": {"whisper": str(tiny_whisper), "prompts": {"length": 2}},
        "data": {"train": str(mixtures)},
        "optim": {"batch_size": 4, "epochs": epochs, "lr": 1e-2, "warmup_steps": 2},
    }


def test_a_run_with_checkpoints_is_continued_only_with_resume(tiny_whisper, mixtures, tmp_path):
    from spkpeft.train.guards import RunExistsError
    from spkpeft.tsasr import train as tstrain
    from spkpeft.tsasr.config import load_config

    with pytest.raises(FileNotFoundError, match="--resume: no complete checkpoint"):
        tstrain.train(load_config(None, data=_data(tiny_whisper, mixtures)), tmp_path / "run", resume=True)
    run = tstrain.train(load_config(None, data=_data(tiny_whisper, mixtures)), tmp_path / "run")
    before = (run / "model.safetensors").read_bytes()
    with pytest.raises(RunExistsError, match="step-2.*pass --resume"):
        tstrain.train(load_config(None, data=_data(tiny_whisper, mixtures)), run)
    assert (run / "model.safetensors").read_bytes() == before  # nothing overwritten
    rows = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2] and math.isfinite(rows[0]["loss"]) and "lr/prompt" in rows[0]


def test_nan_loss_stops_naming_the_step_and_the_last_checkpoint(
    tiny_whisper, mixtures, tmp_path, monkeypatch
):
    from spkpeft.train.guards import NonFiniteLossError
    from spkpeft.tsasr import train as tstrain
    from spkpeft.tsasr.config import load_config

    calls = {"n": 0}
    forward = TSWhisper.forward

    def nan_at_third(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls["n"] += 1
        loss = forward(self, *args, **kwargs)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(TSWhisper, "forward", nan_at_third)
    cfg = load_config(None, data=_data(tiny_whisper, mixtures, epochs=2))
    with pytest.raises(
        NonFiniteLossError, match=r"step 3 \(epoch 1, batch 0\).*checkpoint: .*step-2.*optim.grad_clip"
    ):
        tstrain.train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_pickled_state_in_an_old_tsasr_checkpoint_is_not_loaded(tmp_path, code_payload):
    payload, marker = code_payload
    old = tmp_path / "run" / tsrun.OLD_CKPT
    old.mkdir(parents=True)
    torch.save({"opt": payload, "step": 1, "epoch": 0}, old / "state.pt")
    with pytest.raises(ValueError, match="earlier spkpeft version.*can run code"):
        tsrun.refuse_old_layout(tmp_path / "run")
    assert not marker.exists()


def test_interrupted_run_resumes_to_the_uninterrupted_weights(
    tiny_whisper, mixtures, tmp_path, monkeypatch, caplog
):  # noqa: E501
    """Stop a 3-epoch run right after its first checkpoint, in the middle of an epoch (as a kill would),
    resume it: the finished weights equal, bit for bit, those of the same run never stopped (same batches,
    optimizer, schedule)."""
    import logging

    from spkpeft.tsasr import train as tstrain
    from spkpeft.tsasr.config import load_config

    data = _data(tiny_whisper, mixtures, epochs=3)
    whole = tstrain.train(load_config(None, data=data), tmp_path / "whole")

    class Killed(Exception):
        pass

    def write_then_die(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        write_checkpoint(*args, **kwargs)
        raise Killed

    monkeypatch.setattr(tstrain, "write_checkpoint", write_then_die)
    # a checkpoint every step: the first one is mid-epoch (epoch 0, batch 1 of 2)
    with pytest.raises(Killed):
        tstrain.train(load_config(None, ["checkpoint_every=1"], data=data), tmp_path / "stopped")
    assert not (tmp_path / "stopped" / "model.safetensors").exists()
    monkeypatch.undo()
    caplog.set_level(logging.INFO, logger="spkpeft")
    resumed = tstrain.train(load_config(None, data=data), tmp_path / "stopped", resume=True)

    a, b = load_file(str(whole / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert a.keys() == b.keys() and a
    for n in a:
        assert torch.equal(a[n], b[n]), n
    msgs = [r.getMessage() for r in caplog.records]
    assert any("resuming" in m and "step 1 (epoch 0, batch 1)" in m for m in msgs), msgs


def test_pair_targets_trains_both_targets_of_a_mixture_in_one_batch(
    tiny_whisper, unit_corpus, mixtures, tmp_path, monkeypatch
):  # noqa: E501
    from spkpeft.tsasr import train as tstrain
    from spkpeft.tsasr.config import load_config
    from spkpeft.tsasr.simulate import SimulateConfig, simulate_mixtures

    both = simulate_mixtures(
        unit_corpus, tmp_path / "both", SimulateConfig(mixtures=6, seed=1, max_seconds=1.8, both_targets=True)
    )
    rec = {c.id: c.recording.id for c in both}
    seen: list[list[str]] = []
    real = tstrain.collate

    def spy(model, items):  # noqa: ANN001, ANN202
        seen.append([i[0] for i in items])
        return real(model, items)

    monkeypatch.setattr(tstrain, "collate", spy)
    data = _data(tiny_whisper, tmp_path / "both" / "mixtures.jsonl.gz")
    run = tstrain.train(load_config(None, ["data.pair_targets=true"], data=data), tmp_path / "run")
    assert (run / "model.safetensors").is_file() and len(seen) == len(both) // 4
    for ids in seen:  # 2 mixtures x their 2 targets
        assert [rec[i] for i in ids][::2] == [rec[i] for i in ids][1::2] and len(set(ids)) == 4
    with pytest.raises(ValueError, match="has 1 cut.*--both-targets"):
        tstrain.train(
            load_config(None, ["data.pair_targets=true"], data=_data(tiny_whisper, mixtures)), tmp_path / "r2"
        )
