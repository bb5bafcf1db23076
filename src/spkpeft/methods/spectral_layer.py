"""The SpectralFT layer: a frozen linear layer re-expressed by its principal singular triplets, whose
singular vectors are tuned with LoRA-style low-rank updates (Li, Mak et al., arXiv 2501.03829).

For a weight W (out x in) with SVD ``W = U S V^T`` and the top-k part ``U_p (out x k), S_p (k,),
V_p (in x k)``::

    W' = (U_p + s B_U A_U) diag(S_p) (V_p + s B_V A_V)^T  [+ W_m = W - U_p S_p V_p^T  if keep_residual]
    y  = x W'^T + b

with s = alpha / r, B_U (out x r), A_U (r x k), B_V (in x r), A_V (r x k). B_U and B_V start at zero and
A_U, A_V Kaiming-uniform (as LoRA's A), so W' starts at the rank-k truncation (or W itself with the
residual). Every factor is in the autograd graph (the released code re-wrapped W' as a new Parameter,
cutting the graph).

Forward: the frozen product plus rank-r corrections, never building W'. With dU = s B_U A_U,
dV = s B_V A_V and W_0 the frozen part (W with the residual, else U_p S_p V_p^T),
W' - W_0 = dU S V^T + U S dV^T + dU S dV^T, so::

    y = x W_0^T + b + s (x M_2) B_U^T + s (x B_V) M_1 + s^2 (x B_V) M_3 B_U^T
    M_1 = A_V S U^T (r, out),  M_2 = V S A_U^T (in, r),  M_3 = A_V S A_U^T (r, r)

M_1..M_3 cost O(r k (in + out)) once per forward; per row the corrections cost about 2 r (in + out),
LoRA's price, and the backward computes no (out, in) weight gradient. x W_0^T is the frozen layer itself
with the residual; without it, ((x V_p) S_p) U_p^T when k (in + out) <= in * out (k = 256 of 1024: half
a dense product), else one dense product with W_0 kept as a frozen buffer.

U_p, S_p, V_p (and the dense W_0 where used) are non-persistent frozen buffers, recomputed reproducibly
from W (W_m is W minus U_p S_p V_p^T, so it is not stored):
:func:`principal_svd` runs in float64 on the CPU and fixes the sign of each singular pair.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from spkpeft.methods.checksums import tensor_checksum


def principal_svd(weight: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k SVD of ``weight`` (out x in) in float64 on the CPU with canonical signs.

    Signs: each column of U is flipped so that its largest-magnitude entry is positive, and the matching
    column of V with it, so the same W gives the same factors on every machine.

    Returns:
        U_p (out, k), S_p (k,), V_p (in, k), all float64 on the CPU.
    """
    w = weight.detach().to(device="cpu", dtype=torch.float64)
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    u, s, v = u[:, :k], s[:k], vh[:k].T
    idx = u.abs().argmax(dim=0)  # (k,)
    sign = torch.sign(u[idx, torch.arange(k)])
    sign[sign == 0] = 1.0
    return u * sign, s, v * sign


class SpectralLinear(nn.Module):
    """A drop-in replacement for a frozen ``nn.Linear``: ``y = x W'^T + b`` (see module docstring).

    Args:
        base: the frozen linear layer; kept (for its bias and to unwrap), never trained.
        k: number of principal singular triplets (<= min(out, in)).
        r: rank of the updates to U_p and V_p.
        alpha: scale numerator; the updates are scaled by alpha / r.
        keep_residual: add the frozen minor part W_m, so W' = W at start.
    """

    def __init__(self, base: nn.Linear, k: int, r: int, alpha: float, keep_residual: bool) -> None:
        super().__init__()
        out_f, in_f = base.weight.shape
        if not 1 <= k <= min(out_f, in_f):
            raise ValueError(f"spectral k={k} must be in [1, {min(out_f, in_f)}] for a {out_f}x{in_f} weight")
        self.base_layer = base
        base.requires_grad_(False)
        self.k, self.r, self.scaling, self.keep_residual = k, r, alpha / r, keep_residual
        w = base.weight
        fk = dict(device=w.device, dtype=w.dtype)
        if w.is_meta:  # shape-only build (parameter counting): no values to decompose
            u, s, v = (torch.empty(out_f, k, **fk), torch.empty(k, **fk), torch.empty(in_f, k, **fk))
            w0 = torch.empty(out_f, in_f, **fk)
            self.checksum = float("nan")
        else:
            u, s, v = principal_svd(w, k)
            self.checksum = tensor_checksum(s)
            w0 = ((u * s) @ v.T).to(**fk)  # float64 product (used below only for a dense frozen part)
            u, s, v = (t.to(**fk) for t in (u, s, v))
        self.register_buffer("U_p", u, persistent=False)
        self.register_buffer("S_p", s, persistent=False)
        self.register_buffer("V_p", v, persistent=False)
        # no residual and a large k: the frozen product is cheaper as one dense (out, in) matmul
        self.dense_frozen = not keep_residual and k * (in_f + out_f) > in_f * out_f
        if self.dense_frozen:
            self.register_buffer("W_0", w0, persistent=False)
        self.B_U = nn.Parameter(torch.zeros(out_f, r, **fk))
        self.A_U = nn.Parameter(torch.empty(r, k, **fk))
        self.B_V = nn.Parameter(torch.zeros(in_f, r, **fk))
        self.A_V = nn.Parameter(torch.empty(r, k, **fk))
        if not w.is_meta:
            nn.init.kaiming_uniform_(self.A_U, a=math.sqrt(5))
            nn.init.kaiming_uniform_(self.A_V, a=math.sqrt(5))

    @property
    def in_features(self) -> int:
        return self.base_layer.in_features

    @property
    def out_features(self) -> int:
        return self.base_layer.out_features

    def effective_weight(self) -> torch.Tensor:
        """W' (out, in), differentiable in the four factors."""
        u = self.U_p + self.scaling * (self.B_U @ self.A_U)  # (out, k)
        v = self.V_p + self.scaling * (self.B_V @ self.A_V)  # (in, k)
        w = (u * self.S_p) @ v.T
        if self.keep_residual:  # W_m = W - U_p S_p V_p^T, never stored
            w = w + (self.base_layer.weight - (self.U_p * self.S_p) @ self.V_p.T)
        return w

    @property
    def weight(self) -> torch.Tensor:
        """W', so code that reads ``proj.weight`` directly (WavLM's attention) also sees the update."""
        return self.effective_weight()

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base_layer.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) -> (..., out), as ``F.linear(x, W', b)`` without building W' (module docstring)."""
        s = self.scaling
        su, sv = self.A_U * self.S_p, self.A_V * self.S_p  # (r, k): A_U S, A_V S
        m1 = sv @ self.U_p.T  # (r, out)
        m2 = self.V_p @ su.T  # (in, r)
        m3 = sv @ self.A_U.T  # (r, r)
        p = F.linear(x, self.B_V.T)  # (..., r)
        q = F.linear(x, m2.T)  # (..., r)
        delta = F.linear(q + s * (p @ m3), self.B_U) + p @ m1  # (..., out)
        return self._frozen(x) + s * delta

    def _frozen(self, x: torch.Tensor) -> torch.Tensor:
        """x W_0^T + b: (..., in) -> (..., out)."""
        if self.keep_residual:
            return self.base_layer(x)
        if self.dense_frozen:
            return F.linear(x, self.W_0, self.base_layer.bias)
        return F.linear(F.linear(x, self.V_p.T) * self.S_p, self.U_p, self.base_layer.bias)

    def merged_linear(self) -> nn.Linear:
        """A plain frozen ``nn.Linear`` holding W' and the original bias."""
        base = self.base_layer
        out = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
        out = out.to(device=base.weight.device, dtype=base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(self.effective_weight())
            if base.bias is not None:
                out.bias.copy_(base.bias)
        return out.requires_grad_(False)

    def extra_repr(self) -> str:
        return f"k={self.k}, r={self.r}, scaling={self.scaling:g}, keep_residual={self.keep_residual}"
