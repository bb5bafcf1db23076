"""Deterministic probe signals and the embedding comparison that the export and ONNX checks use."""

from __future__ import annotations

import numpy as np
import torch

from spkpeft.data.config import SAMPLE_RATE


def probe_waveforms(
    seconds: tuple[float, ...] = (1.3, 2.0), seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch (B, S) of deterministic noise-plus-tone signals and their lengths (B,)."""
    rng = np.random.default_rng(seed)
    n = [int(s * SAMPLE_RATE) for s in seconds]
    wav = torch.zeros(len(n), max(n))
    for i, k in enumerate(n):
        t = np.arange(k) / SAMPLE_RATE
        x = 0.3 * np.sin(2 * np.pi * (120 + 40 * i) * t) + 0.05 * rng.standard_normal(k)
        wav[i, :k] = torch.from_numpy(x.astype(np.float32))
    return wav, torch.tensor(n)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max over rows of ||a - b|| / ||a|| (a, b: (B, E))."""
    return float(((a - b).norm(dim=1) / a.norm(dim=1).clamp_min(1e-12)).max())
