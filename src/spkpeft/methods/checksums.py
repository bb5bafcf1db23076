"""Scalar fingerprints of frozen backbone tensors that a method re-derives at load (SpectralFT's SVD,
PiSSA's residual), saved in ``method.json`` so a different backbone of the same shape is refused."""

from __future__ import annotations

import math

import torch


def tensor_checksum(t: torch.Tensor) -> float:
    """Sum of the values in float64 (e.g. of the singular values S_p, or of |W|)."""
    return float(t.detach().to(torch.float64).sum())


def compare_checksums(method: str, what: str, saved: dict[str, float], actual: dict[str, float]) -> None:
    """Raise ValueError naming the first module whose checksum differs (relative tolerance 1e-6)."""
    for path, value in actual.items():
        if path not in saved:
            raise ValueError(f"{method}: saved state has no checksum for {path}; saved: {sorted(saved)[:5]}")
        if not math.isclose(saved[path], value, rel_tol=1e-6):
            raise ValueError(
                f"{method}: {path} {what} differ from the saved method's (checksum {value:.8g} vs saved "
                f"{saved[path]:.8g}): the backbone is not the one the method was trained on"
            )
