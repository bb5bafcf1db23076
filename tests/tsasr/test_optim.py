"""TS-ASR's optimiser and schedule come from spkpeft.train.optim: named parameter groups (prompt, lora,
backbone), each with its ``optim.lr``, and the same AdamW + linear warm-up/decay numbers as before."""

from __future__ import annotations

import pytest
import torch
from transformers import get_linear_schedule_with_warmup

from spkpeft.config import ConfigError
from spkpeft.train.optim import build_optimizer, build_scheduler, lr_factor, param_groups
from spkpeft.tsasr.config import load_config
from spkpeft.tsasr.methods import TSASR_METHODS, declared_groups
from spkpeft.tsasr.model import ModelConfig, TSWhisper
from spkpeft.tsasr.prompts import PromptConfig


def test_linear_schedule_decays_as_transformers_after_the_warmup():
    total, warmup = 20, 5
    ref = get_linear_schedule_with_warmup(torch.optim.SGD([torch.zeros(1)], lr=1.0), warmup, total)
    for step in range(total):
        ours = lr_factor(step, total, warmup, "linear", 0.0)
        if step < warmup:
            assert ours == pytest.approx((step + 1) / warmup)
        else:
            assert ours == pytest.approx(ref.lr_lambdas[0](step)), step
    assert lr_factor(total - 1, total, warmup, "linear", 0.0) == pytest.approx(1 / (total - warmup))
    assert lr_factor(total - 1, total, 0, "linear", 0.5) == pytest.approx(0.5 + 0.5 / total)


GROUPS_OF = {
    "prompt": {"prompt"},
    "lora": {"prompt", "lora"},
    "full": {"prompt", "backbone"},
    "frozen": set(),
}


def test_group_matrix_covers_every_registered_method():
    assert set(GROUPS_OF) == set(TSASR_METHODS.names())
    assert set(declared_groups()) == {"prompt", "lora", "backbone"}


@pytest.mark.parametrize(("method", "groups"), sorted(GROUPS_OF.items()))
def test_method_groups_get_their_own_learning_rate(tiny_whisper, method, groups):
    model = TSWhisper.from_config(ModelConfig(whisper=str(tiny_whisper), method=method), 12)
    named = model.param_groups()
    assert set(named) == groups == set(TSASR_METHODS.config_cls(method).GROUPS)
    if not groups:  # frozen: plain Whisper, nothing trains, no slots
        assert not model.trainable_parameters() and model.prompts is None
        return
    assert sum(len(v) for v in named.values()) == len(model.trainable_parameters())  # each exactly once
    if method == "lora":
        assert all(p.shape[0] <= 4 or p.shape[1] <= 4 for p in named["lora"])  # rank-4 factors only
    lrs = {"default": 1e-2, "lora": 1e-3, "backbone": 1e-5}
    cfg = load_config(None, data={"optim": {"lr": lrs}}).optim
    opt = build_optimizer(param_groups(named, cfg, known=declared_groups()), cfg)
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["weight_decay"] == 0.01
    assert {g["name"]: g["lr"] for g in opt.param_groups} == {g: cfg.lr_of(g) for g in groups}


def test_same_updates_as_the_former_single_group_adamw(tiny_whisper):
    """The shared optimiser + schedule give bit for bit the weights of TS-ASR's former own code:
    one AdamW(lr, weight_decay) over all trainable parameters with LambdaLR linear warm-up and decay."""
    cfg = load_config(None, data={"optim": {"lr": 1e-2, "warmup_steps": 2}}).optim
    total = 6

    def run(shared: bool) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        mc = ModelConfig(whisper=str(tiny_whisper), method="lora", prompts=PromptConfig(length=2))
        model = TSWhisper.from_config(mc, 12)
        if shared:
            opt = build_optimizer(param_groups(model.param_groups(), cfg, known=declared_groups()), cfg)
            sched = build_scheduler(opt, cfg, total)
        else:  # the former tsasr/train.py::_schedule, verbatim
            opt = torch.optim.AdamW(model.trainable_parameters().values(), lr=1e-2, weight_decay=0.01)

            def f(step: int) -> float:
                if step < 2:
                    return (step + 1) / 2
                return max(0.0, (total - step) / max(1, total - 2))

            sched = torch.optim.lr_scheduler.LambdaLR(opt, f)
        for i in range(total):
            sum(
                (p * (i + 1 + k)).sin().sum() for k, p in enumerate(model.trainable_parameters().values())
            ).backward()
            opt.step()
            sched.step()
            opt.zero_grad()
        return {n: p.detach().clone() for n, p in model.trainable_parameters().items()}

    new, old = run(True), run(False)
    assert new.keys() == old.keys()
    for n in new:
        assert torch.equal(new[n], old[n]), n


def test_learning_rate_config_forms():
    assert load_config(None, data={"optim": {"lr": 1e-2}}).optim.lr == {"default": 1e-2}  # saved runs
    assert load_config(None, ["optim.lr=1e-3"]).optim.lr == {"default": 1e-3}  # YAML reads 1e-3 as text
    cfg = load_config(None, ["optim.lr.lora=1e-3"], data={"optim": {"lr": 1e-2}})
    assert cfg.optim.lr == {"default": 1e-2, "lora": 1e-3}
    with pytest.raises(ConfigError, match="promt.*prompt, backbone, lora, default"):
        load_config(None, ["optim.lr.promt=1e-3"])
    with pytest.raises(
        ConfigError, match="model.method='dora' is unknown; valid: frozen, full, lora, prompt"
    ):
        load_config(None, ["model.method=dora"])  # checked when the config is read, before any model
    with pytest.raises(ConfigError, match="final_lr_ratio"):
        load_config(None, ["optim.schedule=cosine"])  # decays to 0 only linearly
