"""SpectralFT's factored forward (low-rank corrections, no W' built in the step) equals ``F.linear`` with
the effective weight W', and the merged layer, in value and in every factor's gradient."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spkpeft.methods.spectral_layer import SpectralLinear


def _layer(keep_residual: bool, seed: int = 0, k: int = 10) -> SpectralLinear:
    g = torch.Generator().manual_seed(seed)
    base = nn.Linear(24, 40, dtype=torch.float64)  # float64 throughout: the forms differ only in rounding
    with torch.no_grad():
        base.weight.copy_(torch.randn(40, 24, generator=g, dtype=torch.float64) / 5)
        base.bias.copy_(torch.randn(40, generator=g, dtype=torch.float64))
    layer = SpectralLinear(base, k=k, r=3, alpha=6.0, keep_residual=keep_residual)
    with torch.no_grad():  # B_U, B_V start at zero: move them so every term of the forward is live
        layer.B_U.copy_(torch.randn(40, 3, generator=g, dtype=torch.float64))
        layer.B_V.copy_(torch.randn(24, 3, generator=g, dtype=torch.float64))
    return layer


def _grads(layer: SpectralLinear, fn, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # noqa: ANN001
    layer.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    y = fn(x)
    (y * torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype)).sum().backward()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters() if p.requires_grad}
    grads["x"] = x.grad
    return y.detach(), grads


@pytest.mark.parametrize(
    "keep_residual,k,dense", [(False, 10, False), (False, 20, True), (True, 10, False), (True, 20, False)]
)
def test_factored_forward_equals_linear_with_effective_weight(
    keep_residual: bool, k: int, dense: bool
) -> None:
    """k (in + out) <= in * out: the frozen product through U_p, S_p, V_p; above: one dense W_0."""
    layer = _layer(keep_residual, k=k)
    assert layer.dense_frozen is dense
    x = torch.randn(2, 7, 24, dtype=torch.float64)
    y_new, g_new = _grads(layer, layer, x)
    y_old, g_old = _grads(layer, lambda t: F.linear(t, layer.effective_weight(), layer.bias), x)
    torch.testing.assert_close(y_new, y_old, rtol=1e-10, atol=1e-10)
    assert set(g_new) == {"B_U", "A_U", "B_V", "A_V", "x"}
    for n in g_new:
        torch.testing.assert_close(g_new[n], g_old[n], rtol=1e-9, atol=1e-9, msg=n)
        assert bool(g_new[n].abs().sum() > 0), n
    merged = layer.merged_linear()
    torch.testing.assert_close(merged(x), y_new, rtol=1e-10, atol=1e-10)


def test_keep_residual_reproduces_the_base_layer_at_start_and_stores_no_residual() -> None:
    layer = _layer(True)
    with torch.no_grad():
        layer.B_U.zero_()
        layer.B_V.zero_()
    x = torch.randn(5, 24, dtype=torch.float64)
    torch.testing.assert_close(layer(x), layer.base_layer(x), rtol=1e-10, atol=1e-10)
    assert not any(t.shape == (40, 24) for n, t in layer.named_buffers())  # W_m is not kept


def test_factored_forward_keeps_no_weight_sized_tensor_for_the_backward() -> None:
    """The step saves only (rows, k), (rows, r) activations and the factors for the backward: no
    (out, in) W' (the old forward saved W' and computed its gradient)."""
    layer = _layer(False).float()
    saved: list[tuple[int, ...]] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(tuple(t.shape))
        return t

    x = torch.randn(6, 24, requires_grad=True)  # as inside a backbone with trained layers below
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(x).sum().backward()
    assert saved and (40, 24) not in saved and (24, 40) not in saved, saved
    old = copy.deepcopy(layer)
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.linear(x, old.effective_weight(), old.bias).sum().backward()
    assert (40, 24) in saved or (24, 40) in saved  # the check above can fail: the old path does save W'
