"""``adapter_mfa``: multi-layer feature aggregation through per-layer adapters (the back-end of WeSpeaker's
w2v-BERT 2.0 recipe, ``W2VBert_Adapter_MFA``; Vox1-O EER 0.31 % with the backbone frozen + LoRA).

Each of the last N hidden states (all L+1 by default) gets its own small adapter,
``Linear(D -> a) -> LayerNorm(a) -> ReLU -> Linear(a -> a)``, applied frame by frame; the N adapter
outputs are concatenated over channels (N a), pooled by attentive statistics over the real frames, and a
linear layer gives the embedding (256)::

    (L+1, B, T, D) -> N x (B, T, a) -> (B, N a, T) -> ASTP (B, 2 N a) -> dropout -> Linear -> (B, E)

As in the recipe: adapter width 128, all states, embedding 256, dropout 0, attention width = adapter
width. Ours: the attentive pooling is this package's ASTP (``conv1d -> ReLU -> BN -> tanh -> conv1d``,
channel-wise softmax over real frames, ECAPA's form; ``global_context`` optional). There is no layer
weighting (``layer_weights()`` is None) and no weighted layer sum, so no inter adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spkpeft.backends.base import BACKENDS, BackendConfig, PostAggregate, check_inputs, reject_post_aggregate
from spkpeft.backends.masking import zero_padded
from spkpeft.backends.pooling import AttentiveStatsPool


@dataclass
class AdapterMfaConfig(BackendConfig):
    """Args:
    adapter_dim: a, the width of each layer's adapter (and of the pooling attention).
    num_layers: N, how many of the last hidden states are used; -1: all L+1.
    embed_dim: E.
    dropout: dropout on the pooled statistics.
    global_context: feed [x, mean, std] to the pooling attention (ECAPA) instead of x alone.
    """

    name: str = "adapter_mfa"
    adapter_dim: int = 128
    num_layers: int = -1
    embed_dim: int = 256
    dropout: float = 0.0
    global_context: bool = False


def layer_adapter(hidden_size: int, width: int) -> nn.Sequential:
    """One hidden state's adapter: (..., D) -> (..., a)."""
    return nn.Sequential(
        nn.Linear(hidden_size, width), nn.LayerNorm(width), nn.ReLU(), nn.Linear(width, width)
    )


@BACKENDS.register("adapter_mfa", config_cls=AdapterMfaConfig)
class AdapterMfaBackend(nn.Module):
    """Per-layer adapters, concatenation over layers, attentive statistics pooling, linear embedding."""

    def __init__(self, cfg: AdapterMfaConfig, num_states: int, hidden_size: int) -> None:
        super().__init__()
        n = num_states if cfg.num_layers == -1 else cfg.num_layers
        if not 1 <= n <= num_states:
            raise ValueError(
                f"adapter_mfa: num_layers={cfg.num_layers} but the backbone has {num_states} hidden states; "
                f"use -1 (all) or a number in [1, {num_states}]"
            )
        if cfg.adapter_dim < 1:
            raise ValueError(f"adapter_mfa: adapter_dim must be >= 1, got {cfg.adapter_dim}")
        self.cfg, self.num_states, self.hidden_size, self.num_used = cfg, num_states, hidden_size, n
        self.embed_dim = cfg.embed_dim
        self.adapters = nn.ModuleList(layer_adapter(hidden_size, cfg.adapter_dim) for _ in range(n))
        channels = n * cfg.adapter_dim
        self.pool = AttentiveStatsPool(
            channels, cfg.adapter_dim, tanh=True, global_context=cfg.global_context
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.embed = nn.Linear(self.pool.out_dim, cfg.embed_dim)

    def forward(
        self, hidden_states: torch.Tensor, mask: torch.Tensor, post_aggregate: PostAggregate | None = None
    ) -> torch.Tensor:
        """(L+1, B, T, D), (B, T) -> (B, E)."""
        reject_post_aggregate(post_aggregate, "adapter_mfa")
        check_inputs(hidden_states, mask, self.num_states, self.hidden_size, "adapter_mfa")
        dtype = self.embed.weight.dtype
        used = hidden_states[self.num_states - self.num_used :]
        x = torch.cat([a(h.to(dtype)) for a, h in zip(self.adapters, used)], dim=-1)  # (B, T, N a)
        x = zero_padded(x.transpose(1, 2), mask)  # (B, N a, T)
        return self.embed(self.drop(self.pool(x, mask)))

    def layer_weights(self) -> None:
        """No layer weighting: every used state has its own adapter."""
        return None
