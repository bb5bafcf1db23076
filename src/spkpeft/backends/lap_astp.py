"""``lap_astp``: the LAP paper's lightweight back-end (arXiv 2512.22148): Layer Attentive Pooling over all
hidden states, then attentive statistics pooling (context-aware, random frame masking 0.1 in training)
-> BN -> Linear -> E (192) -> BN. It has no weighted layer sum, so no inter adapter."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spkpeft.backends.base import BACKENDS, BackendConfig, PostAggregate, check_inputs, reject_post_aggregate
from spkpeft.backends.lap import LayerAttentivePooling
from spkpeft.backends.masking import MaskedBatchNorm
from spkpeft.backends.pooling import AttentiveStatsPool


@dataclass
class LapAstpConfig(BackendConfig):
    """Args:
    heads: LAP channel groups H.
    channels: LAP output channels C (the ASTP input).
    embed_dim: E.
    dropout: dropout on LAP's layer weights.
    share_se: one layer squeeze-excitation for all groups (notes) or one per group (released code).
    attention_reduction: ASTP attention bottleneck as a fraction of C.
    frame_drop: training-time probability of masking a frame out of the ASTP attention.
    """

    name: str = "lap_astp"
    heads: int = 16
    channels: int = 512
    embed_dim: int = 192
    dropout: float = 0.1
    share_se: bool = True
    attention_reduction: float = 0.5
    frame_drop: float = 0.1


@BACKENDS.register("lap_astp", config_cls=LapAstpConfig)
class LapAstpBackend(nn.Module):
    """Layer Attentive Pooling + attentive statistics pooling: the LAP paper's lightweight back-end."""

    def __init__(self, cfg: LapAstpConfig, num_states: int, hidden_size: int) -> None:
        super().__init__()
        self.cfg, self.num_states, self.hidden_size = cfg, num_states, hidden_size
        self.embed_dim = cfg.embed_dim
        self.lap = LayerAttentivePooling(
            num_states, hidden_size, cfg.channels, cfg.heads, cfg.dropout, cfg.share_se
        )
        bottleneck = max(1, int(cfg.channels * cfg.attention_reduction))
        self.pool = AttentiveStatsPool(cfg.channels, bottleneck, frame_drop=cfg.frame_drop)
        self.pool_norm = MaskedBatchNorm(self.pool.out_dim)
        self.embed = nn.Linear(self.pool.out_dim, cfg.embed_dim, bias=False)  # BN follows
        self.embed_norm = MaskedBatchNorm(cfg.embed_dim)

    def forward(
        self, hidden_states: torch.Tensor, mask: torch.Tensor, post_aggregate: PostAggregate | None = None
    ) -> torch.Tensor:
        """(L+1, B, T, D), (B, T) -> (B, E)."""
        reject_post_aggregate(post_aggregate, "lap_astp")
        check_inputs(hidden_states, mask, self.num_states, self.hidden_size, "lap_astp")
        x = self.lap(hidden_states, mask)  # (B, C, T)
        return self.embed_norm(self.embed(self.pool_norm(self.pool(x, mask))))

    def layer_weights(self) -> torch.Tensor | None:
        """(L+1,) LAP's mean layer attention (sigmoid, in (0, 1)) from the last forward, or None."""
        return self.lap.last_weights
