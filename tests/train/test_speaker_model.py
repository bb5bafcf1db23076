"""SpeakerModel: composition, trainable set, inter adapter hand-off, save/load for inference."""

from __future__ import annotations

import pytest
import torch

from spkpeft.model import load_speaker_model, save_model
from spkpeft.train.experiment import build_model, load_experiment


def _wav(b: int = 2, s: int = 8000) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, s, generator=g) * 0.1, torch.tensor([s, s - 2000])


@pytest.mark.parametrize("method", ["unipet", "lora", "frozen"])
def test_trainable_set_is_method_plus_backend(method):
    cfg = load_experiment(
        "tiny", [f"method.name={method}"] + (["method.prompt_length=3"] if method == "unipet" else [])
    )
    model = build_model(cfg)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    expected = {id(p) for p in model.method.own_parameters().values()} | {
        id(p) for p in model.backend.parameters()
    }
    assert trainable == expected
    wav, lengths = _wav()
    emb = model(wav, lengths)
    assert emb.shape == (2, cfg.backend.embed_dim)
    emb.pow(2).sum().backward()
    assert all(p.grad is not None for p in model.backend.parameters())
    assert all(p.grad is None for n, p in model.backbone.named_parameters() if id(p) not in trainable)
    if method != "frozen":
        assert any(
            p.grad is not None and p.grad.abs().sum() > 0 for p in model.method.own_parameters().values()
        )


def test_inter_adapter_is_applied_and_identity_is_not_passed(monkeypatch):
    cfg = load_experiment("tiny", ["method.name=inner_inter"])
    model = build_model(cfg)
    assert model._post_aggregate() is not None
    seen = []
    orig = model.method.adapt_aggregate
    monkeypatch.setattr(model.method, "adapt_aggregate", lambda x, m: seen.append(x.shape) or orig(x, m))
    model._adapts_aggregate = True
    model(*_wav())
    assert seen and seen[0][-1] == 32
    lap = build_model(
        load_experiment("tiny", ["backend={name: lap_astp, channels: 32, heads: 4, embed_dim: 16}"])
    )
    assert lap._post_aggregate() is None  # frozen: identity, so a back-end without a layer sum accepts it
    assert lap.embed(*_wav()).shape == (2, 16)


@pytest.mark.parametrize("backbone", ["tiny-wavlm", "tiny-whisper"])
def test_save_and_load_reproduce_embeddings(tmp_path, backbone):
    ov = ["method.name=unipet", "method.prompt_length=2", "method.bottleneck=8"]
    cfg = load_experiment("tiny", [*ov, f"backbone.name_or_path={backbone}"])
    model = build_model(cfg)
    with torch.no_grad():  # make the method and back-end differ from a fresh build
        for p in [*model.method.own_parameters().values(), *model.backend.parameters()]:
            p.add_(0.01 * torch.randn_like(p))
    wav, lengths = _wav()
    ref = model.embed(wav, lengths)
    save_model(model, tmp_path / "run" / "model")
    loaded = load_speaker_model(tmp_path / "run")  # a run dir resolves to run/model
    assert not loaded.training
    assert torch.allclose(loaded.embed(wav, lengths), ref, atol=1e-6)
    assert not torch.allclose(build_model(cfg).embed(wav, lengths), ref, atol=1e-4)
    with pytest.raises(FileNotFoundError, match="model.json"):
        load_speaker_model(tmp_path)


def test_embed_is_no_grad_and_restores_mode():
    model = build_model(load_experiment("tiny", ["method.name=adapter", "method.bottleneck=8"]))
    model.train()
    out = model.embed(*_wav())
    assert not out.requires_grad and model.training
    assert not model.backbone.model.training  # train_mode false: the pre-trained encoder stays in eval


def test_stage_switch_rules_and_trainable_groups():
    from spkpeft.config import ConfigError
    from spkpeft.train.experiment import resolve_stages
    from spkpeft.train.setup import build_train_module, switch_stage

    stages = "stages=[{trainable: [backend]}, {method: {name: lora, r: 2}}]"
    cfg = load_experiment("tiny", ["method={name: adapter, bottleneck: 4}", stages])
    s0, s1 = resolve_stages(cfg)
    tm = build_train_module(cfg, s0, num_classes=5)
    assert tm.set_trainable(s0.trainable) == ["backend"]
    assert not any(p.requires_grad for p in tm.model.method.parameters())
    assert sorted(tm.set_trainable(["method", "loss"])) == ["adapter", "loss"]
    with pytest.raises(ConfigError, match="unknown parameter group 'gates'"):
        tm.set_trainable(["gates"])
    with pytest.raises(ConfigError, match="cannot switch from 'adapter'"):
        switch_stage(tm, cfg, s1)  # the adapter's learned update would be lost
    frozen = load_experiment("tiny", ["stages=[{}, {method: {name: lora, r: 2}, loss: {margin: 0.4}}]"])
    f0, f1 = resolve_stages(frozen)
    tm = build_train_module(frozen, f0, num_classes=5)
    head = tm.head.weight.detach().clone()
    switch_stage(tm, frozen, f1)
    assert tm.model.method.name == "lora" and "lora" in tm.groups()
    assert tm.head.margin == pytest.approx(0.4) and torch.equal(tm.head.weight, head)  # same weights


def test_groups_are_what_methods_declare(monkeypatch):
    from spkpeft.methods import METHODS, MethodConfig
    from spkpeft.registry import Entry
    from spkpeft.train.module import TrainModule

    model = build_model(load_experiment("tiny", ["method={name: adapter, bottleneck: 4}"]))
    head = torch.nn.Linear(2, 2)
    tm = TrainModule(model, head)  # the adapter returns exactly what AdapterConfig.GROUPS declares
    before = {"adapter", "gate", "prompt", "lora", "spectral", "backbone", "backend", "loss"}  # the old list
    assert tm.known_groups() == before

    class RouterConfig(MethodConfig):  # a new method declares its group: the trainer knows it, no edit
        GROUPS = ("router",)

    entries = {**METHODS._entries, "router": Entry("router", lambda cfg, bb: None, RouterConfig, "")}
    monkeypatch.setattr(METHODS, "_entries", entries)
    assert "router" in tm.known_groups()
    extra = {**model.method.param_groups(), "router": [torch.nn.Parameter(torch.zeros(2))]}
    monkeypatch.setattr(model.method, "param_groups", lambda: extra)
    with pytest.raises(ValueError, match=r"returns parameter group\(s\) \['router'\] that AdapterConfig"):
        TrainModule(model, head)


def test_lora_merges_into_the_backbone_when_full_follows():
    """WeSpeaker's w2v-BERT recipe: LoRA (stage 1) is folded into the weights before full fine-tuning."""
    from spkpeft.train.experiment import resolve_stages
    from spkpeft.train.setup import build_train_module, switch_stage

    stages = "stages=[{}, {method: {name: full}}]"
    cfg = load_experiment(
        "tiny", ["backbone.name_or_path=tiny-w2v-bert", "method={name: lora, r: 2}", stages]
    )
    s0, s1 = resolve_stages(cfg)
    tm = build_train_module(cfg, s0, num_classes=5).eval()
    with torch.no_grad():
        for p in tm.model.method.own_parameters().values():
            p.add_(0.5 * torch.randn_like(p))
    wav, lengths = torch.randn(2, 8000), torch.tensor([8000, 5000])
    with torch.no_grad():
        before = tm.model(wav, lengths)
    switch_stage(tm, cfg, s1)
    assert tm.model.method.name == "full"
    assert not any("lora" in n for n, _ in tm.model.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(tm.model(wav, lengths), before, atol=1e-5, rtol=0)
    q = tm.model.backbone.layers[0].self_attn.linear_q.weight
    assert q.requires_grad and any(p is q for p in tm.groups()["backbone"])
