"""``ecapa_tdnn``: weighted layer sum -> ECAPA-TDNN (Desplanques et al., Interspeech 2020), as in
WeSpeaker's ``ECAPA_TDNN_GLOB_c512/c1024`` used on SSL features (the SpectralFT paper's back-end).

Conv1d(k 5) -> three SE-Res2Blocks (kernel 3, dilations 2, 3, 4, Res2 scale 8) -> multi-layer feature
aggregation (concatenate the three block outputs, 1x1 conv to 1536, ReLU) -> attentive statistics pooling
(context-aware, masked to real frames) -> BN -> Linear -> E (192).
Padded frames are zeroed before every convolution and kept out of every statistic, so padding never
changes an utterance's embedding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from spkpeft.backends.aggregation import WeightedLayerSum
from spkpeft.backends.base import BACKENDS, BackendConfig, PostAggregate, check_inputs
from spkpeft.backends.masking import MaskedBatchNorm, masked_mean_std, zero_padded
from spkpeft.backends.pooling import AttentiveStatsPool


@dataclass
class EcapaTdnnConfig(BackendConfig):
    """Args:
    channels: C of the SE-Res2Blocks (512; 1024 for the large variant).
    embed_dim: E.
    scale: Res2Net scale (channel splits per block); must divide ``channels``.
    kernel_size: kernel of the dilated convolutions in the blocks.
    dilations: one SE-Res2Block per dilation.
    se_bottleneck: width of the squeeze-excitation bottleneck.
    mfa_channels: output channels of the multi-layer feature aggregation conv (WeSpeaker: 1536 for both
        the 512 and the 1024 variant).
    attention_bottleneck: width of the attentive-statistics attention.
    normalize_layers: layer-normalise each hidden state before the weighted sum.
    """

    LAYER_SUM = True

    name: str = "ecapa_tdnn"
    channels: int = 512
    embed_dim: int = 192
    scale: int = 8
    kernel_size: int = 3
    dilations: list[int] = field(default_factory=lambda: [2, 3, 4])
    se_bottleneck: int = 128
    mfa_channels: int = 1536
    attention_bottleneck: int = 128
    normalize_layers: bool = False


class ConvReluBn(nn.Module):
    """Masked conv1d (same length) -> ReLU -> masked BN. (B, Cin, T), (B, T) -> (B, Cout, T)."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 1, dilation: int = 1) -> None:
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(cin, cout, kernel_size, dilation=dilation, padding=pad)
        self.norm = MaskedBatchNorm(cout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.relu(self.conv(zero_padded(x, mask))), mask)


class Res2Conv(nn.Module):
    """Res2Net hierarchy: split C into ``scale`` parts; part i (i < scale-1) is convolved after adding the
    previous part's output; the last part passes through. (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, scale: int) -> None:
        super().__init__()
        self.width = channels // scale
        n = max(scale - 1, 1)
        self.convs = nn.ModuleList(
            ConvReluBn(self.width, self.width, kernel_size, dilation) for _ in range(n)
        )
        self.passthrough = scale > 1

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        parts = torch.split(x, self.width, dim=1)
        out, sp = [], parts[0]
        for i, conv in enumerate(self.convs):
            sp = conv(sp if i == 0 else sp + parts[i], mask)
            out.append(sp)
        if self.passthrough:
            out.append(parts[-1])
        return torch.cat(out, dim=1)


class SqueezeExcite(nn.Module):
    """Channel gates from the mean over real frames. (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, bottleneck: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, bottleneck), nn.ReLU(), nn.Linear(bottleneck, channels), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mean, _ = masked_mean_std(x, mask)
        return x * self.fc(mean)[..., None]


class SERes2Block(nn.Module):
    """1x1 ConvReluBn -> Res2Conv (dilated) -> 1x1 ConvReluBn -> SE, plus the residual."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, scale: int, se_bottleneck: int):
        super().__init__()
        self.pre = ConvReluBn(channels, channels)
        self.res2 = Res2Conv(channels, kernel_size, dilation, scale)
        self.post = ConvReluBn(channels, channels)
        self.se = SqueezeExcite(channels, se_bottleneck)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.post(self.res2(self.pre(x, mask), mask), mask)
        return x + self.se(y, mask)


@BACKENDS.register("ecapa_tdnn", config_cls=EcapaTdnnConfig)
class EcapaTdnnBackend(nn.Module):
    """Weighted layer sum -> ECAPA-TDNN (SE-Res2Blocks, MFA, attentive statistics) -> 192-d."""

    def __init__(self, cfg: EcapaTdnnConfig, num_states: int, hidden_size: int) -> None:
        super().__init__()
        if cfg.channels % cfg.scale:
            raise ValueError(f"ecapa_tdnn.channels={cfg.channels} must be divisible by scale={cfg.scale}")
        if not cfg.dilations:
            raise ValueError("ecapa_tdnn.dilations must list at least one dilation (default [2, 3, 4])")
        self.cfg, self.num_states, self.hidden_size = cfg, num_states, hidden_size
        self.embed_dim = cfg.embed_dim
        c = cfg.channels
        self.aggregate = WeightedLayerSum(num_states, cfg.normalize_layers)
        self.stem = ConvReluBn(hidden_size, c, kernel_size=5)
        self.blocks = nn.ModuleList(
            SERes2Block(c, cfg.kernel_size, d, cfg.scale, cfg.se_bottleneck) for d in cfg.dilations
        )
        self.mfa = nn.Conv1d(c * len(cfg.dilations), cfg.mfa_channels, kernel_size=1)
        self.pool = AttentiveStatsPool(cfg.mfa_channels, cfg.attention_bottleneck, tanh=True)
        self.pool_norm = MaskedBatchNorm(self.pool.out_dim)
        self.embed = nn.Linear(self.pool.out_dim, cfg.embed_dim)

    def forward(
        self, hidden_states: torch.Tensor, mask: torch.Tensor, post_aggregate: PostAggregate | None = None
    ) -> torch.Tensor:
        """(L+1, B, T, D), (B, T) -> (B, E)."""
        check_inputs(hidden_states, mask, self.num_states, self.hidden_size, "ecapa_tdnn")
        x = self.aggregate(hidden_states)
        if post_aggregate is not None:
            x = post_aggregate(x, mask)
        x = self.stem(x.transpose(1, 2), mask)  # (B, C, T); the stem zeroes padded frames first
        outs = []
        for block in self.blocks:
            x = block(x, mask)
            outs.append(x)
        x = zero_padded(torch.relu(self.mfa(torch.cat(outs, dim=1))), mask)
        return self.embed(self.pool_norm(self.pool(x, mask)))

    def layer_weights(self) -> torch.Tensor:
        """(L+1,) softmax layer weights."""
        return self.aggregate.weights().detach()
