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

Forward without building W'. With U' = U_p + s B_U A_U, V' = V_p + s B_V A_V, a = x V_p and
c = s (x B_V) A_V (both (N, k)), z = (a + c) diag(S_p)::

    x W'^T = z U'^T = z U_p^T + s (z A_U^T) B_U^T                               (no residual)
    x W'^T = x W^T + (c diag(S_p)) U_p^T + s (z A_U^T) B_U^T                    (with the residual)

The second line is the frozen layer's own product plus low-rank corrections (W' - W = U' S V'^T -
U S V^T), so W_m is never needed in the forward. Neither line builds an (out, in) matrix or its gradient
in the step: per row the first costs k (in + out) + r (in + out + 2k) multiply-adds instead of in * out
(k = 256 of 1024: half), and the backward computes no (out, in) weight gradient at all.

U_p, S_p, V_p are non-persistent frozen buffers, recomputed reproducibly from W (W_m is W minus their
product, so it is not stored):
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
            self.checksum = float("nan")
        else:
            u, s, v = principal_svd(w, k)
            self.checksum = tensor_checksum(s)
            u, s, v = (t.to(**fk) for t in (u, s, v))
        self.register_buffer("U_p", u, persistent=False)
        self.register_buffer("S_p", s, persistent=False)
        self.register_buffer("V_p", v, persistent=False)
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
        a = F.linear(x, self.V_p.T)  # (..., k)
        c = F.linear(F.linear(x, self.B_V.T), self.A_V.T) * s  # (..., k)
        z = (a + c) * self.S_p
        up = F.linear(F.linear(z, self.A_U), self.B_U) * s  # (..., out)
        if self.keep_residual:
            return self.base_layer(x) + F.linear(c * self.S_p, self.U_p) + up
        return F.linear(z, self.U_p, self.base_layer.bias) + up

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
