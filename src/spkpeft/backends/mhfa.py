"""``mhfa``: Multi-Head Factorized Attentive pooling (Peng et al., SLT 2022; WeSpeaker's SSL MHFA).

Two softmax layer-weight vectors give keys and values from the hidden states; each is compressed
D -> ``compression_dim``; H heads score the frames from the keys (softmax over real frames only) and pool
the values; the H pooled vectors are concatenated -> Linear -> E (256).
``post_aggregate`` (the inter adapter) is applied to both layer sums, keys and values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spkpeft.backends.aggregation import WeightedLayerSum
from spkpeft.backends.base import BACKENDS, BackendConfig, PostAggregate, check_inputs


@dataclass
class MhfaConfig(BackendConfig):
    """Args:
    heads: attention heads H (32 for Base models, 64 for Large).
    compression_dim: width of the compressed keys and values.
    embed_dim: E.
    normalize_layers: layer-normalise each hidden state before the weighted sums.
    """

    LAYER_SUM = True

    name: str = "mhfa"
    heads: int = 32
    compression_dim: int = 128
    embed_dim: int = 256
    normalize_layers: bool = False


@BACKENDS.register("mhfa", config_cls=MhfaConfig)
class MhfaBackend(nn.Module):
    """Key/value layer sums, H-head attentive pooling over time, linear embedding."""

    def __init__(self, cfg: MhfaConfig, num_states: int, hidden_size: int) -> None:
        super().__init__()
        self.cfg, self.num_states, self.hidden_size = cfg, num_states, hidden_size
        self.embed_dim = cfg.embed_dim
        self.keys = WeightedLayerSum(num_states, cfg.normalize_layers)
        self.values = WeightedLayerSum(num_states, cfg.normalize_layers)
        self.compress_k = nn.Linear(hidden_size, cfg.compression_dim)
        self.compress_v = nn.Linear(hidden_size, cfg.compression_dim)
        self.head_scores = nn.Linear(cfg.compression_dim, cfg.heads)
        self.embed = nn.Linear(cfg.heads * cfg.compression_dim, cfg.embed_dim)

    def forward(
        self, hidden_states: torch.Tensor, mask: torch.Tensor, post_aggregate: PostAggregate | None = None
    ) -> torch.Tensor:
        """(L+1, B, T, D), (B, T) -> (B, E)."""
        check_inputs(hidden_states, mask, self.num_states, self.hidden_size, "mhfa")
        k, v = self.keys(hidden_states), self.values(hidden_states)  # (B, T, D)
        if post_aggregate is not None:
            k, v = post_aggregate(k, mask), post_aggregate(v, mask)
        scores = self.head_scores(self.compress_k(k))  # (B, T, H)
        scores = scores.masked_fill(~mask[..., None], torch.finfo(scores.dtype).min)
        att = torch.softmax(scores, dim=1)
        pooled = torch.einsum("bth,btc->bhc", att, self.compress_v(v))  # (B, H, C)
        return self.embed(pooled.flatten(1))

    def layer_weights(self) -> torch.Tensor:
        """(L+1,) softmax weights of the value sum (what is pooled); see :meth:`key_layer_weights`."""
        return self.values.weights().detach()

    def key_layer_weights(self) -> torch.Tensor:
        """(L+1,) softmax weights of the key sum (what decides where to attend)."""
        return self.keys.weights().detach()
