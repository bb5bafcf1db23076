"""The trainer calls a method's ``data_init`` once, on the first batch of a fresh run, and never on resume
(the checkpoint's prompts are kept)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from spkpeft.methods.prompt_bank import PromptBank
from spkpeft.train.experiment import load_experiment
from spkpeft.train.trainer import train

FRAMES = ["method={name: deep_prompt, prompt_length: 2, prompt_init: frames}", "train.checkpoint_every=2",
          "train.epochs=1"]  # fmt: skip


class Interrupt(Exception):
    pass


def test_fresh_run_initialises_from_frames_and_a_resume_does_not(
    tiny_yaml, tiny_corpus, tmp_path, monkeypatch
):
    calls = []
    original = PromptBank.init_from_frames

    def counted(self, forward):  # noqa: ANN001, ANN202
        xavier = self.prompts.detach().clone()
        original(self, forward)
        calls.append((xavier, self.prompts.detach().clone()))

    monkeypatch.setattr(PromptBank, "init_from_frames", counted)

    def cfg(name: str):  # noqa: ANN202
        return load_experiment(tiny_yaml, [f"data.train_manifest={tiny_corpus}",
                                           f"train.output_dir={tmp_path / name}", *FRAMES])  # fmt: skip

    ref = train(cfg("ref"))
    assert len(calls) == 1
    xavier, init = calls[0]
    assert not torch.isclose(init, xavier).any()  # set from the frames before the first step

    def spread(p: torch.Tensor) -> float:  # how far a layer's prompts lie from their common mean
        return float((p - p.mean(1, keepdim=True)).abs().max() / p.mean(1).abs().max())

    assert spread(init) < 0.4 <= spread(xavier)  # near one vector (the layer's mean frame), unlike Xavier
    prompts = load_file(str(ref / "model" / "method" / "method.safetensors"))["deep_prompt.prompts.prompts"]

    def kill(step: int, loss: float) -> None:
        if step == 3:
            raise Interrupt

    calls.clear()
    with pytest.raises(Interrupt):
        train(cfg("killed"), on_step=kill)
    assert len(calls) == 1
    calls.clear()
    resumed = train(cfg("killed"), resume=True)
    assert calls == []  # the checkpoint's prompts are kept
    again = load_file(str(resumed / "model" / "method" / "method.safetensors"))["deep_prompt.prompts.prompts"]
    assert torch.equal(again, prompts)  # and the run ends where the uninterrupted one did


def test_a_method_built_for_a_later_stage_is_initialised_there(tiny_yaml, tiny_corpus, tmp_path, monkeypatch):
    seen = []
    original = PromptBank.init_from_frames
    monkeypatch.setattr(
        PromptBank, "init_from_frames", lambda self, fwd: (seen.append(1), original(self, fwd))
    )
    method = "{name: deep_prompt, prompt_length: 2, prompt_init: frames}"
    stages = f"stages=[{{name: warm, trainable: [backend, loss]}}, {{name: prompts, method: {method}}}]"
    where = [f"data.train_manifest={tiny_corpus}", f"train.output_dir={tmp_path / 'r'}"]
    cfg = load_experiment(tiny_yaml, [*where, "train.epochs=1", stages])
    train(cfg)
    assert seen == [1]  # at the switch frozen -> deep_prompt, not at the run's start (nothing to init)
