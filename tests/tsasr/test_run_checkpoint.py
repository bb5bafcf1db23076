"""TS-ASR run checkpoints: optimizer state stored without pickle; a pickled one is refused, never loaded."""

from __future__ import annotations

import pytest
import torch

from spkpeft.tsasr.model import ModelConfig, TSWhisper
from spkpeft.tsasr.prompts import PromptConfig
from spkpeft.tsasr.run import load_checkpoint, save_checkpoint


def _model_and_optim(path) -> tuple[TSWhisper, torch.optim.Optimizer, object]:  # noqa: ANN001
    model = TSWhisper.from_config(ModelConfig(whisper=str(path), prompts=PromptConfig(length=4)), 12)
    opt = torch.optim.AdamW(model.trainable_parameters().values(), lr=1e-3)
    return model, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5**s)


def test_checkpoint_round_trip_without_pickle(tiny_whisper, tmp_path):
    model, opt, sched = _model_and_optim(tiny_whisper)
    sum(p.square().sum() for p in model.trainable_parameters().values()).backward()
    opt.step()
    sched.step()
    save_checkpoint(tmp_path, model, opt, sched, step=7, epoch=2)
    assert sorted(p.name for p in (tmp_path / "checkpoint").iterdir()) == [
        "model.safetensors",
        "state.safetensors",
    ]
    model2, opt2, sched2 = _model_and_optim(tiny_whisper)
    assert load_checkpoint(tmp_path, model2, opt2, sched2) == (7, 2)
    for i, st in opt.state_dict()["state"].items():
        assert all(torch.equal(v, opt2.state_dict()["state"][i][k]) for k, v in st.items())
    assert sched2.last_epoch == 1 and opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_pickled_state_in_a_tsasr_checkpoint_is_not_loaded(tmp_path, code_payload):
    payload, marker = code_payload
    ck = tmp_path / "run" / "checkpoint"
    ck.mkdir(parents=True)
    torch.save({"opt": payload, "step": 1, "epoch": 0}, ck / "state.pt")
    with pytest.raises(ValueError, match="earlier spkpeft version.*can run code"):
        load_checkpoint(tmp_path / "run", None, None, None)
    assert not marker.exists()
