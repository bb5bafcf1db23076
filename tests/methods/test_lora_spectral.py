"""The LoRA family (HF peft) and SpectralFT on every tiny backbone family: invariants of each method."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest
import torch

from spkpeft.backbones import load_backbone
from spkpeft.backbones.backbone import SpeechBackbone, get_module
from spkpeft.backbones.hf import load_hf_model
from spkpeft.config import parse_named
from spkpeft.methods import METHODS, MergeNotSupported
from spkpeft.methods.io import load_method, save_method
from spkpeft.methods.merge import save_merged

FAMILIES = ["wavlm", "hubert", "wav2vec2", "whisper", "w2v-bert"]
METHOD_NAMES = ["lora", "dora", "pissa", "spectral"]
# Small enough that the tiny (32 x 32) matrices have real truncation (k < 32) and low rank (r < 32).
OVERRIDES = {
    "lora": {"r": 4},
    "dora": {"r": 4},
    "pissa": {"r": 4},
    "spectral": {"r": 4, "k": 8},
}


@pytest.fixture(scope="module")
def saved_dirs(tmp_path_factory) -> dict[str, Path]:  # noqa: ANN001
    """One tiny random model per family, saved with save_pretrained (the real loading path)."""
    out = {}
    for fam in FAMILIES:
        torch.manual_seed(1)
        model, _ = load_hf_model(f"tiny-{fam}")
        out[fam] = tmp_path_factory.mktemp(fam)
        model.save_pretrained(out[fam])
    return out


def fresh(saved_dirs: dict[str, Path], fam: str) -> SpeechBackbone:
    """A frozen backbone loaded from the saved directory (the original weights every time)."""
    return load_backbone(saved_dirs[fam]).eval()


def build(name: str, backbone: SpeechBackbone, **extra):  # noqa: ANN003, ANN201
    cfg = parse_named(METHODS, {"name": name, **OVERRIDES[name], **extra}, "method")
    return METHODS.build(name, cfg, backbone)


@pytest.fixture(scope="module")
def wav() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.randn(2, 4000, generator=g)


def proj_of(backbone: SpeechBackbone, layer: torch.nn.Module, which: str) -> torch.nn.Module:
    """The ``q``/``k``/``v``/``o`` projection of one Transformer layer, wherever the family keeps it."""
    spec = backbone.spec
    return get_module(
        layer, {"q": spec.q_proj, "k": spec.k_proj, "v": spec.v_proj, "o": spec.out_proj}[which]
    )


def run(backbone: SpeechBackbone, wav: torch.Tensor) -> torch.Tensor:
    """(B, S) -> (L+1, B, T, D) hidden states through the backbone wrapper, without autograd."""
    with torch.no_grad():
        return backbone(wav).hidden_states


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def loss_of(states: torch.Tensor) -> torch.Tensor:
    """A scalar that depends on every state (a fixed random projection; the mean square would not:
    layer-normed states have a constant one)."""
    g = torch.Generator().manual_seed(5)
    return (states * torch.randn(states.shape[-1], generator=g)).mean()


def train_step(backbone: SpeechBackbone, method, wav: torch.Tensor, lr: float = 0.5) -> None:  # noqa: ANN001
    """One SGD step (moves zero-initialised factors off zero)."""
    opt = torch.optim.SGD(list(method.own_parameters().values()), lr=lr)
    opt.zero_grad()
    loss_of(backbone(wav).hidden_states).backward()
    opt.step()


def perturb(backbone: SpeechBackbone, method, wav: torch.Tensor) -> None:  # noqa: ANN001
    """A training step, then noise on every factor, so the update is large in every matrix (q/k updates of a
    tiny random model barely move the outputs after one step)."""
    train_step(backbone, method, wav)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in method.own_parameters().values():
            p.add_(0.3 * torch.randn(p.shape, generator=g))


def truncated(w: torch.Tensor, k: int) -> torch.Tensor:
    u, s, vh = torch.linalg.svd(w.double(), full_matrices=False)
    return ((u[:, :k] * s[:k]) @ vh[:k]).to(w.dtype)


MATRIX = [(m, f) for m in METHOD_NAMES for f in FAMILIES]


@pytest.mark.parametrize("name,fam", MATRIX)
def test_init_equals_backbone(name: str, fam: str, saved_dirs, wav) -> None:  # noqa: ANN001
    """LoRA/DoRA/PiSSA start at the frozen backbone; SpectralFT at its rank-k truncation of W_q, W_k."""
    ref_bb = fresh(saved_dirs, fam)
    if name == "spectral":
        k = OVERRIDES["spectral"]["k"]
        for layer in ref_bb.layers:
            for proj in (proj_of(ref_bb, layer, "q"), proj_of(ref_bb, layer, "k")):
                proj.weight.data = truncated(proj.weight.data, k)
    ref = run(ref_bb, wav)
    bb = fresh(saved_dirs, fam)
    build(name, bb)
    assert rel_err(run(bb, wav), ref) < 1e-5


@pytest.mark.parametrize("fam", FAMILIES)
def test_spectral_keep_residual_starts_at_backbone(fam: str, saved_dirs, wav) -> None:  # noqa: ANN001
    ref = run(fresh(saved_dirs, fam), wav)
    bb = fresh(saved_dirs, fam)
    w = proj_of(bb, bb.layers[0], "q").weight.detach().clone()
    method = build("spectral", bb, keep_residual=True)
    layer = proj_of(bb, bb.layers[0], "q")
    assert torch.allclose(layer.effective_weight(), w, atol=1e-6)
    assert rel_err(run(bb, wav), ref) < 1e-5
    assert "W_m" not in bb.model.state_dict() and method.extra_state()


@pytest.mark.parametrize("name,fam", MATRIX)
def test_only_method_params_train_and_all_get_grads(name: str, fam: str, saved_dirs, wav) -> None:  # noqa: ANN001
    bb = fresh(saved_dirs, fam)
    method = build(name, bb)
    own = method.own_parameters()
    assert all(k.startswith(f"{name}.") for k in own)
    trainable = {id(p) for p in bb.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in own.values()} and trainable
    assert set(method.param_groups()) == {"spectral" if name == "spectral" else "lora"}
    assert set(method.param_groups()) == set(type(method.cfg).GROUPS)
    train_step(bb, method, wav)  # zero factors get a gradient here (their partner is non-zero) and move
    for p in own.values():
        p.grad = None
    loss_of(bb(wav).hidden_states).backward()
    no_grad = [k for k, p in own.items() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert not no_grad, f"no gradient reached {no_grad}"


@pytest.mark.parametrize("name,fam", MATRIX)
def test_save_load_on_fresh_backbone_reproduces(name: str, fam: str, saved_dirs, wav, tmp_path) -> None:  # noqa: ANN001
    bb = fresh(saved_dirs, fam)
    method = build(name, bb)
    perturb(bb, method, wav)
    out = run(bb, wav)
    save_method(method, tmp_path)
    bb2 = fresh(saved_dirs, fam)  # the *original* weights: PiSSA must re-derive its residual
    assert rel_err(run(bb2, wav), out) > 1e-4  # the trained update is visible
    method2 = load_method(tmp_path, bb2)
    assert method2.name == name and method2.cfg == method.cfg
    assert rel_err(run(bb2, wav), out) < 1e-5


@pytest.mark.parametrize("name,fam", MATRIX)
def test_merge_equals_unmerged_and_loads_with_transformers(
    name: str, fam: str, saved_dirs, wav, tmp_path
) -> None:  # noqa: ANN001, E501
    bb = fresh(saved_dirs, fam)
    method = build(name, bb)
    perturb(bb, method, wav)
    out = run(bb, wav)
    merged = method.merge()
    kinds = {type(m).__name__ for m in merged.modules()}
    assert not any("lora" in k.lower() or "Spectral" in k for k in kinds), kinds
    assert rel_err(run(SpeechBackbone(merged, bb.spec), wav), out) < 1e-4
    assert rel_err(run(bb, wav), out) == 0.0  # the live model is untouched
    save_merged(method, tmp_path)
    loaded = bb.spec.model_class().from_pretrained(tmp_path).eval()  # AutoModel for the wav2vec2 line
    assert rel_err(run(SpeechBackbone(loaded, bb.spec), wav), out) < 1e-4


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_merge_in_place_marks_method_merged(name: str, saved_dirs, wav) -> None:  # noqa: ANN001
    bb = fresh(saved_dirs, "wavlm")
    method = build(name, bb)
    perturb(bb, method, wav)
    out = run(bb, wav)
    merged = method.merge(inplace=True)
    assert merged is bb.model and method.merged
    assert rel_err(run(bb, wav), out) < 1e-4
    with pytest.raises(RuntimeError, match="merged"):
        method.own_parameters()
    with pytest.raises(RuntimeError, match="merged"):
        method.merge()


def test_wavlm_lora_update_takes_effect(saved_dirs, wav) -> None:  # noqa: ANN001
    """transformers' WavLM attention reads q_proj.weight directly; a LoRA update must still change it."""
    bb = fresh(saved_dirs, "wavlm")
    ref = run(bb, wav)
    method = build("lora", bb, targets=["q"])
    with torch.no_grad():
        for k, p in method.own_parameters().items():
            if "lora_B" in k:
                p.normal_()
    assert rel_err(run(bb, wav), ref) > 1e-3


def test_lora_rejects_unknown_target(saved_dirs) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=r"unknown projection.*'x'"):
        build("lora", fresh(saved_dirs, "hubert"), targets=["q", "x"])


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_meta_build_has_the_same_parameter_shapes(name: str, saved_dirs) -> None:  # noqa: ANN001
    real = build(name, fresh(saved_dirs, "wavlm")).own_parameters()
    meta = build(name, load_backbone("tiny-wavlm", device="meta")).own_parameters()
    assert {k: tuple(p.shape) for k, p in meta.items()} == {k: tuple(p.shape) for k, p in real.items()}
    assert all(p.is_meta for p in meta.values())


def test_spectral_weight_is_rank_k_truncation_and_grads_reach_all_factors(saved_dirs) -> None:  # noqa: ANN001
    bb = fresh(saved_dirs, "hubert")
    w = bb.model.encoder.layers[1].attention.k_proj.weight.detach().clone()
    build("spectral", bb)
    layer = bb.model.encoder.layers[1].attention.k_proj
    assert torch.allclose(layer.effective_weight(), truncated(w, 8), atol=1e-6)
    assert not torch.allclose(truncated(w, 8), w, atol=1e-3)  # the truncation is real
    with torch.no_grad():  # both zero factors off zero: all four factors must now get a gradient
        layer.B_U.normal_()
        layer.B_V.normal_()
    layer(torch.randn(3, 32)).sum().backward()
    for n in ("B_U", "A_U", "B_V", "A_V"):
        assert getattr(layer, n).grad is not None and bool(getattr(layer, n).grad.abs().sum() > 0), n
    assert all(p.grad is None for p in layer.base_layer.parameters())


def test_spectral_svd_signs_are_canonical_and_reproducible() -> None:
    from spkpeft.methods.spectral_layer import principal_svd

    w = torch.randn(12, 10)
    u, s, v = principal_svd(w, 5)
    idx = u.abs().argmax(0)
    assert bool((u[idx, torch.arange(5)] > 0).all())
    assert torch.allclose((u * s) @ v.T, truncated(w.double(), 5))
    u2, _, v2 = principal_svd(w.clone(), 5)
    assert torch.equal(u, u2) and torch.equal(v, v2)


def test_spectral_k_is_clamped_with_a_warning(saved_dirs, caplog) -> None:  # noqa: ANN001
    bb = fresh(saved_dirs, "wav2vec2")
    with caplog.at_level(logging.WARNING):
        build("spectral", bb, k=500)
    assert "k=500 exceeds" in caplog.text
    assert bb.model.encoder.layers[0].attention.q_proj.k == 32


def test_spectral_checksum_detects_another_backbone(saved_dirs) -> None:  # noqa: ANN001
    state = build("spectral", fresh(saved_dirs, "wavlm")).extra_state()
    same = build("spectral", fresh(saved_dirs, "wavlm"))
    same.check_extra_state(state)
    other = copy.deepcopy(fresh(saved_dirs, "wavlm"))
    with torch.no_grad():
        other.model.encoder.layers[0].attention.q_proj.weight.mul_(1.5)
    with pytest.raises(ValueError, match="singular values differ"):
        build("spectral", other).check_extra_state(state)


@pytest.mark.parametrize("name", ["pissa", "spectral"])
def test_load_refuses_another_backbone_of_the_same_shape(name: str, saved_dirs, tmp_path) -> None:  # noqa: ANN001
    """Both re-derive frozen state from the weights at load; the saved checksums catch a wrong backbone."""
    method = build(name, fresh(saved_dirs, "hubert"))
    save_method(method, tmp_path)
    meta = json.loads((tmp_path / "method.json").read_text())
    assert len(meta["extra_state"]) == 2 * (3 if name == "pissa" else 2)  # layers x targets
    load_method(tmp_path, fresh(saved_dirs, "hubert"))  # the same backbone loads
    other = fresh(saved_dirs, "hubert")
    with torch.no_grad():
        other.model.encoder.layers[1].attention.k_proj.weight.mul_(1.5)
    with pytest.raises(ValueError, match=r"layers\.1\.attention\.k_proj .*differ"):
        load_method(tmp_path, other)


def test_save_merged_refuses_a_method_that_cannot_merge(saved_dirs, tmp_path) -> None:  # noqa: ANN001
    bb = fresh(saved_dirs, "hubert")
    method = METHODS.build("adapter", parse_named(METHODS, {"name": "adapter"}, "method"), bb)
    with pytest.raises(MergeNotSupported):
        save_merged(method, tmp_path)
    assert not any(tmp_path.iterdir())
