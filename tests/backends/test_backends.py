"""Every registered back-end: output shape, gradients to every parameter, padding invariance in eval
mode, the post_aggregate (inter adapter) contract, layer weights and input checks."""

import pytest
import torch
from torch import nn

from spkpeft.backends import BACKENDS, layer_sum_backends
from spkpeft.config import parse_named

L1, D = 4, 32  # hidden states (L+1) and hidden size of a tiny backbone
# tiny settings per back-end; every registered back-end must be listed so that it is tested
TINY = {
    "linear": {"embed_dim": 16},
    "ecapa_tdnn": {
        "channels": 16,
        "embed_dim": 12,
        "attention_bottleneck": 8,
        "se_bottleneck": 8,
        "scale": 4,
        "mfa_channels": 20,
    },
    "lap_astp": {"heads": 4, "channels": 24, "embed_dim": 12},
    "mhfa": {"heads": 4, "compression_dim": 8, "embed_dim": 16},
    "adapter_mfa": {"adapter_dim": 6, "embed_dim": 10},
}
HAS_LAYER_SUM = set(layer_sum_backends())  # what the configs declare (LAYER_SUM); checked below
NO_LAYER_WEIGHTS = {"adapter_mfa"}  # one adapter per state, no weighting


def build(name: str, **extra):
    cfg = parse_named(BACKENDS, {"name": name, **TINY[name], **extra}, "backend")
    return BACKENDS.build(cfg.name, cfg, num_states=L1, hidden_size=D)


def randomise_norms(model: nn.Module) -> None:
    """Non-trivial batch-norm statistics and affine parameters, so eval mode really uses them."""
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.running_mean.normal_(0, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.normal_(0, 0.3)


def padded_batch(lengths: list[int], garbage: float = 5.0):
    """Hidden states (L+1, B, T, D) with garbage on padded frames (the masks must ignore them)."""
    t = max(lengths)
    h = torch.randn(L1, len(lengths), t, D)
    mask = torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]
    h = torch.where(mask[None, :, :, None], h, garbage * torch.randn_like(h))
    return h, mask


def test_every_backend_has_tiny_settings():
    assert set(BACKENDS.names()) == set(TINY), "add a tiny config for each new back-end to TINY"


@pytest.mark.parametrize("name", sorted(TINY))
def test_shape_and_gradients(name):
    model = build(name)
    h, mask = padded_batch([20, 13, 17])
    h.requires_grad_(True)
    out = model(h, mask)
    assert out.shape == (3, model.embed_dim)
    assert torch.isfinite(out).all()
    (out * torch.randn_like(out)).sum().backward()  # not pow(2): a final BN makes that constant
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"{name}: parameters without a finite gradient: {missing}"
    assert all(p.grad.abs().sum() > 0 for p in model.parameters()), f"{name}: a parameter got zero grad"
    assert h.grad is not None


@pytest.mark.parametrize("name", sorted(TINY))
def test_padding_never_changes_an_embedding(name):
    model = build(name)
    randomise_norms(model)
    model.eval()
    lengths = [20, 11, 16]
    h, mask = padded_batch(lengths)
    with torch.no_grad():
        batch = model(h, mask)
        for i, n in enumerate(lengths):
            alone = model(h[:, i : i + 1, :n], mask[i : i + 1, :n])
            assert torch.allclose(batch[i], alone[0], atol=1e-4, rtol=1e-4), (
                f"{name}: utterance {i} (length {n}) changes when padded to {max(lengths)}: "
                f"max diff {(batch[i] - alone[0]).abs().max():.2e}"
            )


@pytest.mark.parametrize("name", sorted(TINY))
def test_post_aggregate_contract(name):
    model = build(name).eval()
    h, mask = padded_batch([9, 6])
    seen = []

    def double(x, m):
        seen.append((tuple(x.shape), m))
        return 2.0 * x + 1.0

    if name not in HAS_LAYER_SUM:
        with pytest.raises(ValueError, match="post_aggregate") as refused:
            model(h, mask, post_aggregate=double)
        assert f"back-end ({', '.join(sorted(HAS_LAYER_SUM))})" in str(refused.value)  # the real ones
        return
    with torch.no_grad():
        plain = model(h, mask)
        adapted = model(h, mask, post_aggregate=double)
    assert seen and all(shape == (2, 9, D) and m is mask for shape, m in seen)
    assert not torch.allclose(plain, adapted)


@pytest.mark.parametrize("name", sorted(TINY))
def test_layer_weights(name):
    model = build(name)
    h, mask = padded_batch([8, 5])
    model(h, mask)
    w = model.layer_weights()
    if name in NO_LAYER_WEIGHTS:
        assert w is None
        return
    assert w is not None and w.shape == (L1,)
    assert torch.all(w >= 0)
    if name != "lap_astp":  # softmax weights sum to one; LAP's are sigmoid attentions in (0, 1)
        assert float(w.sum()) == pytest.approx(1.0, abs=1e-5)
    else:
        assert torch.all(w <= 1)


@pytest.mark.parametrize("name", sorted(TINY))
def test_bad_inputs_are_clear_errors(name):
    model = build(name)
    h, mask = padded_batch([8, 5])
    with pytest.raises(ValueError, match=f"built for {L1} hidden states of size {D}"):
        model(h[:-1], mask)
    with pytest.raises(ValueError, match="mask must be bool"):
        model(h, mask.float())
    empty = mask.clone()
    empty[1] = False
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        model(h, empty)


@pytest.mark.parametrize("name", sorted(TINY))
def test_half_precision_states_from_a_frozen_backbone(name):
    """A bf16 backbone (no autocast) feeds a float32 back-end: the output is float32 and close."""
    model = build(name).eval()
    h, mask = padded_batch([10, 7], garbage=0.0)
    with torch.no_grad():
        ref = model(h, mask)
        out = model(h.bfloat16(), mask)
    assert out.dtype == torch.float32
    assert torch.allclose(out, ref, atol=0.05 * float(ref.abs().max()))
