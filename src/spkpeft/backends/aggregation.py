"""Softmax-weighted sum of the backbone's hidden states (SUPERB / s3prl Featurizer style)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class WeightedLayerSum(nn.Module):
    """``sum_l softmax(w)_l * h_l``, with learned logits ``w`` (L+1,) starting uniform.

    Args:
        num_states: L+1.
        normalize: layer-normalise each hidden state (over D, no affine) before summing, as s3prl's
            Featurizer does with ``normalize=True``; keeps layers with large norms from dominating.
    """

    def __init__(self, num_states: int, normalize: bool = False) -> None:
        super().__init__()
        self.normalize = normalize
        self.logits = nn.Parameter(torch.zeros(num_states))

    def weights(self) -> torch.Tensor:
        """(L+1,) softmax weights."""
        return torch.softmax(self.logits, dim=0)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """(L+1, B, T, D) -> (B, T, D) in the weights' dtype.

        The sum runs in the states' dtype (a half-precision frozen backbone is not copied to float32 as a
        whole); only the (B, T, D) result is cast to the back-end's dtype.
        """
        h = F.layer_norm(hidden_states, hidden_states.shape[-1:]) if self.normalize else hidden_states
        w = self.weights()
        return torch.einsum("l,lbtd->btd", w.to(h.dtype), h).to(w.dtype)
