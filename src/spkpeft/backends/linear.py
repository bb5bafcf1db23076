"""``linear``: the UniPET paper's "Linear" back-end.

Softmax-weighted layer sum -> (inter adapter) -> statistics pooling (mean + std over real frames) ->
one linear layer to the embedding (Sang & Hansen, arXiv 2501.16542, Table I "Linear").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spkpeft.backends.aggregation import WeightedLayerSum
from spkpeft.backends.base import BACKENDS, BackendConfig, PostAggregate, check_inputs
from spkpeft.backends.masking import zero_padded
from spkpeft.backends.pooling import StatsPool


@dataclass
class LinearBackendConfig(BackendConfig):
    """Args:
    embed_dim: E, the embedding size.
    normalize_layers: layer-normalise each hidden state before the weighted sum.
    """

    LAYER_SUM = True

    name: str = "linear"
    embed_dim: int = 256
    normalize_layers: bool = False


@BACKENDS.register("linear", config_cls=LinearBackendConfig)
class LinearBackend(nn.Module):
    """Weighted layer sum, statistics pooling, linear embedding (UniPET's "Linear" back-end)."""

    def __init__(self, cfg: LinearBackendConfig, num_states: int, hidden_size: int) -> None:
        super().__init__()
        self.cfg, self.num_states, self.hidden_size = cfg, num_states, hidden_size
        self.embed_dim = cfg.embed_dim
        self.aggregate = WeightedLayerSum(num_states, cfg.normalize_layers)
        self.pool = StatsPool(hidden_size)
        self.embed = nn.Linear(self.pool.out_dim, cfg.embed_dim)

    def forward(
        self, hidden_states: torch.Tensor, mask: torch.Tensor, post_aggregate: PostAggregate | None = None
    ) -> torch.Tensor:
        """(L+1, B, T, D), (B, T) -> (B, E)."""
        check_inputs(hidden_states, mask, self.num_states, self.hidden_size, "linear")
        x = self.aggregate(hidden_states)
        if post_aggregate is not None:
            x = post_aggregate(x, mask)
        x = zero_padded(x.transpose(1, 2), mask)  # (B, D, T)
        return self.embed(self.pool(x, mask))

    def layer_weights(self) -> torch.Tensor:
        """(L+1,) softmax layer weights."""
        return self.aggregate.weights().detach()
