"""Method x backbone-family matrix: the invariants every method of the adapter/prompt family keeps."""

from __future__ import annotations

import pytest
import torch
from test_lora_spectral import METHOD_NAMES as PEFT_LAYERS  # the weight-update methods' matrix

from spkpeft.backbones import load_backbone
from spkpeft.backbones.families import FAMILIES as FAMILY_REGISTRY
from spkpeft.backbones.presets import PRESETS
from spkpeft.methods import METHODS, MergeNotSupported
from spkpeft.methods.io import load_method, save_method
from spkpeft.train.module import TRAINER_GROUPS

FAMILIES = ["tiny-wavlm", "tiny-hubert", "tiny-wav2vec2", "tiny-whisper", "tiny-w2v-bert"]
IDENTITY_AT_INIT = ["frozen", "full", "adapter", "inner_inter"]  # output == frozen backbone at init
PROMPTED = ["prompt", "deep_prompt", "unipet"]  # prompts are attended to from the start
HOOKED = ["adapter", "inner_inter", "prompt", "deep_prompt", "unipet"]
ALL = IDENTITY_AT_INIT + PROMPTED
SMALL = dict(bottleneck=8, inter_bottleneck=8, prompt_length=4)


def test_the_two_method_matrices_cover_every_registered_method_and_family():
    assert sorted(ALL + PEFT_LAYERS) == METHODS.names() and not set(ALL) & set(PEFT_LAYERS)
    assert sorted(PRESETS[p].family for p in FAMILIES) == FAMILY_REGISTRY.names()


def test_declared_groups_leave_the_trainer_groups_alone():
    for name in METHODS.names():
        groups = METHODS.config_cls(name).GROUPS
        assert not set(groups) & {*TRAINER_GROUPS, "default", "method"}, f"{name} declares {groups}"


def _cfg(name: str):
    cls = METHODS.config_cls(name)
    fields = cls.__dataclass_fields__
    return cls(**{k: v for k, v in SMALL.items() if k in fields})


def _setup(name: str, family: str):
    bb = load_backbone(family).eval()
    return bb, METHODS.build(name, _cfg(name), bb)


def _perturb(method) -> None:
    """Move every method parameter off its init, as training would (zero-init Up layers included)."""
    with torch.no_grad():
        for p in method.own_parameters().values():
            p.add_(0.1 * torch.randn_like(p))


def _batch():
    lengths = torch.tensor([6400, 4000, 2720])
    wav = torch.randn(3, 6400) * (torch.arange(6400)[None] < lengths[:, None])
    return wav, lengths


def _aggregate(method, out):
    """A stand-in weighted-sum back-end: mean over layers, then the method's inter adapter."""
    return method.adapt_aggregate(out.hidden_states.mean(0), out.mask)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", ALL)
def test_output_at_init(name, family):
    bb = load_backbone(family).eval()
    wav, lengths = _batch()
    with torch.no_grad():
        ref = bb(wav, lengths)
        method = METHODS.build(name, _cfg(name), bb)
        out = bb(wav, lengths)
    torch.testing.assert_close(out.hidden_states[0], ref.hidden_states[0])  # state 0 precedes every hook
    assert out.hidden_states.shape == ref.hidden_states.shape  # prompt frames never reach the states
    if name in IDENTITY_AT_INIT:
        torch.testing.assert_close(out.hidden_states, ref.hidden_states)
        agg = ref.hidden_states.mean(0)
        torch.testing.assert_close(method.adapt_aggregate(agg, ref.mask), agg)
    else:
        assert not torch.allclose(out.hidden_states[-1], ref.hidden_states[-1], atol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", ALL)
def test_only_method_params_train_and_all_get_gradients(name, family):
    bb, method = _setup(name, family)
    own = method.own_parameters()
    assert all(k.startswith(f"{name}.") for k in own)
    trainable = {id(p) for p in [*bb.parameters(), *getattr(method, "parameters", list)()] if p.requires_grad}
    assert trainable == {id(p) for p in own.values()}
    groups = method.param_groups()
    assert sorted(id(p) for g in groups.values() for p in g) == sorted(id(p) for p in own.values())
    assert sorted(groups) == sorted(type(method.cfg).GROUPS)  # the groups the optimiser is told of
    if name == "frozen":
        assert own == {}
        return
    wav, lengths = _batch()
    weights = torch.randn(bb.num_layers + 1, 1, 1, bb.hidden_size)
    opt = torch.optim.SGD(own.values(), lr=0.1)
    for _ in range(2):  # zero-init Up layers pass gradient to the rest only after one step
        opt.zero_grad()
        out = bb(wav, lengths)
        loss = (out.hidden_states * weights).sum() + _aggregate(method, out).pow(2).sum()
        loss.backward()
        opt.step()
    no_grad = [k for k, p in own.items() if p.grad is None or p.grad.abs().sum() == 0]
    assert no_grad == []


@pytest.mark.parametrize("family", ["tiny-wavlm", "tiny-whisper"])
@pytest.mark.parametrize("name", ["adapter", "deep_prompt", "unipet", "full"])
def test_cnn_runs_without_autograd(name, family):
    bb, _ = _setup(name, family)
    grads = []
    bb.feature_encoder.register_forward_hook(lambda m, a, o: grads.append(o.grad_fn))
    bb(*_batch())
    assert grads and all(g is None for g in grads)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", ALL)
def test_padded_batch_matches_each_utterance_alone(name, family):
    bb, method = _setup(name, family)
    _perturb(method)
    wav, lengths = _batch()
    with torch.no_grad():
        out = bb(wav, lengths)
        agg = _aggregate(method, out)
        for i, n in enumerate(lengths.tolist()):
            alone = bb(wav[i : i + 1, :n])
            t = alone.hidden_states.shape[2]
            torch.testing.assert_close(
                out.hidden_states[:, i, :t], alone.hidden_states[:, 0], atol=1e-5, rtol=0
            )
            torch.testing.assert_close(agg[i, :t], _aggregate(method, alone)[0], atol=1e-5, rtol=0)
            assert out.hidden_states[:, i, t:].abs().sum() == 0 and agg[i, t:].abs().sum() == 0


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", HOOKED + ["full"])
def test_save_load_into_fresh_backbone_reproduces_outputs(tmp_path, name, family):
    bb = load_backbone(family).eval()
    bb.model.save_pretrained(tmp_path / "backbone")
    method = METHODS.build(name, _cfg(name), bb)
    _perturb(method)
    save_method(method, tmp_path / "method")
    fresh = load_backbone(tmp_path / "backbone").eval()
    wav, lengths = _batch()
    with torch.no_grad():
        before = fresh(wav, lengths).hidden_states
        loaded = load_method(tmp_path / "method", fresh)
        a, b = bb(wav, lengths), fresh(wav, lengths)
    assert not torch.allclose(before, a.hidden_states, atol=1e-4)  # the loaded params matter
    torch.testing.assert_close(b.hidden_states, a.hidden_states)
    torch.testing.assert_close(_aggregate(loaded, b), _aggregate(method, a))
    assert loaded.cfg == method.cfg


@pytest.mark.parametrize("name", HOOKED)
def test_load_into_mismatched_backbone_fails_clearly(tmp_path, name):
    bb, method = _setup(name, "tiny-wavlm")
    save_method(method, tmp_path)
    with pytest.raises(ValueError, match="family: saved 'wavlm', backbone has 'hubert'"):
        load_method(tmp_path, load_backbone("tiny-hubert"))
    with pytest.raises(ValueError, match="num_layers: saved 2, backbone has 3"):
        load_method(tmp_path, load_backbone("tiny-wavlm", num_hidden_layers=3))


@pytest.mark.parametrize("name", HOOKED)
def test_merge_is_refused_with_a_reason(name):
    _, method = _setup(name, "tiny-hubert")
    with pytest.raises(MergeNotSupported, match=f"{name}.*cannot be merged: it adds modules"):
        method.merge()


@pytest.mark.parametrize("name", ["frozen", "full"])
def test_merge_of_frozen_and_full_is_the_model(name):
    bb, method = _setup(name, "tiny-hubert")
    assert method.merge() is bb.model


def test_one_hooked_method_per_backbone():
    bb, first = _setup("adapter", "tiny-hubert")
    with pytest.raises(ValueError, match="already carries 1 method hook"):
        METHODS.build("deep_prompt", _cfg("deep_prompt"), bb)
    first.detach()
    METHODS.build("deep_prompt", _cfg("deep_prompt"), bb)


@pytest.mark.parametrize("family", ["tiny-hubert", "tiny-whisper"])
def test_full_can_train_the_feature_encoder(family):
    bb = load_backbone(family)
    assert not any(
        k.startswith(f"full.{bb.spec.feature_encoder[0]}.")
        for k in _setup("full", family)[1].own_parameters()
    )
    cfg = METHODS.config_cls("full")(train_feature_encoder=True)
    method = METHODS.build("full", cfg, bb)
    assert not bb.feature_encoder_frozen
    assert any(k.startswith(f"full.{bb.spec.feature_encoder[0]}.") for k in method.own_parameters())
    assert not any(k.startswith(tuple(f"full.{f}" for f in bb.spec.fixed)) for k in method.own_parameters())
    bb(*_batch()).hidden_states[-1].sum().backward()
    assert all(p.grad is not None for p in bb.feature_encoder.parameters())


@pytest.mark.parametrize("name", ALL)
def test_builds_on_meta(name):
    bb = load_backbone("tiny-wavlm", device="meta")
    method = METHODS.build(name, METHODS.config_cls(name)(), bb)
    assert all(p.device.type == "meta" for p in method.own_parameters().values())
