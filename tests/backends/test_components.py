"""Building blocks of the back-ends: masked batch norm, attentive pooling's frame masking, LAP against a
direct re-computation of the published recipe, layer weights."""

import pytest
import torch
import torch.nn.functional as F

from spkpeft.backends import BACKENDS
from spkpeft.backends.lap import LayerAttentivePooling
from spkpeft.backends.masking import MaskedBatchNorm, drop_frames
from spkpeft.backends.pooling import AttentiveStatsPool
from spkpeft.config import parse_named


def test_masked_batch_norm_uses_real_frames_only():
    x = torch.randn(2, 3, 6)
    mask = torch.tensor([[True] * 6, [True] * 2 + [False] * 4])
    x[1, :, 2:] = 100.0  # garbage on padded frames
    bn = MaskedBatchNorm(3, momentum=1.0)  # running stats = this batch's stats
    out = bn(x, mask)
    real = torch.cat([x[0], x[1, :, :2]], dim=1)  # (C, 8 real frames)
    expected = (real - real.mean(1, keepdim=True)) / (
        real.var(1, unbiased=False, keepdim=True) + bn.eps
    ).sqrt()
    assert torch.allclose(out[0], expected[:, :6], atol=1e-5)
    assert torch.allclose(out[1, :, :2], expected[:, 6:], atol=1e-5)
    assert torch.all(out[1, :, 2:] == 0)
    assert torch.allclose(bn.running_mean, real.mean(1), atol=1e-5)
    assert torch.allclose(bn.running_var, real.var(1, unbiased=True), atol=1e-4)
    bn.eval()
    assert torch.all(bn(x, mask)[1, :, 2:] == 0)


def test_drop_frames_keeps_at_least_one_real_frame():
    mask = torch.tensor([[True, True, False], [True, False, False]])
    for _ in range(20):
        kept = drop_frames(mask, 0.9)
        assert kept.any(dim=1).all() and not (kept & ~mask).any()


def test_astp_frame_masking_only_in_training():
    pool = AttentiveStatsPool(4, 2, frame_drop=0.5)
    x, mask = torch.randn(3, 4, 30), torch.ones(3, 30, dtype=torch.bool)
    a, b = pool(x, mask), pool(x, mask)
    assert not torch.allclose(a, b), "training-time frame masking should make two passes differ"
    pool.eval()
    assert torch.allclose(pool(x, mask), pool(x, mask))
    pool.train()
    pool.frame_drop = 0.0
    assert torch.allclose(pool(x, mask), pool(x, mask))


def excite(lap: LayerAttentivePooling, group: int, s: torch.Tensor) -> torch.Tensor:
    """Squeeze-excitation over layers, (B, T, L+1) -> (B, T, L+1), with group ``group``'s weights."""
    se = lap.se
    i = 0 if se.sq_weight.shape[0] == 1 else group
    return torch.relu(s @ se.sq_weight[i] + se.sq_bias[i]) @ se.ex_weight[i] + se.ex_bias[i]


def reference_lap(lap: LayerAttentivePooling, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The recipe of IMPLEMENTATION_NOTES §3, written out step by step (eval mode, no padding)."""
    x = h.permute(1, 3, 2, 0)  # (B, D, T, L+1)
    bn = lap.in_norm
    x = F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    x = lap.in_proj(x)
    b, d, t, n = x.shape
    heads = lap.heads
    out, all_w = [], []
    for g in range(heads):
        xg = x[:, g * d // heads : (g + 1) * d // heads]  # (B, D/H, T, L+1)
        w = torch.sigmoid(excite(lap, g, xg.mean(1)) + excite(lap, g, xg.max(1).values))  # (B, T, L+1)
        all_w.append(w)
        out.append((xg * w[:, None]).max(-1).values)  # max over layers
    y = lap.out_proj(torch.cat(out, dim=1))
    on = lap.out_norm
    y = F.batch_norm(y, on.running_mean, on.running_var, on.weight, on.bias, False, 0.0, on.eps)
    return y, torch.stack(all_w, 1).mean(dim=(0, 1, 2))


@pytest.mark.parametrize("share_se", [True, False])
def test_lap_matches_the_recipe(share_se):
    lap = LayerAttentivePooling(num_states=5, hidden_size=16, channels=6, heads=4, share_se=share_se)
    assert lap.se.sq_weight.shape == ((1 if share_se else 4), 5, 2)  # L+1 -> (L+1)//2
    for bn in (lap.in_norm, lap.out_norm):
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2)
    lap.eval()
    h = torch.randn(5, 2, 7, 16)
    expected, expected_w = reference_lap(lap, h)
    out = lap(h, torch.ones(2, 7, dtype=torch.bool))
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(lap.last_weights, expected_w, atol=1e-6)


def test_lap_layer_weights_none_before_forward_and_bad_heads():
    cfg = parse_named(BACKENDS, {"name": "lap_astp", "heads": 4, "channels": 8}, "backend")
    model = BACKENDS.build("lap_astp", cfg, num_states=3, hidden_size=16)
    assert model.layer_weights() is None
    with pytest.raises(ValueError, match="divisible by heads=5"):
        LayerAttentivePooling(3, 16, 8, heads=5)


@pytest.mark.parametrize("name", ["linear", "ecapa_tdnn", "mhfa"])
def test_softmax_layer_weights_follow_the_logits(name):
    cfg = parse_named(BACKENDS, {"name": name}, "backend")
    if name == "ecapa_tdnn":
        cfg.channels, cfg.se_bottleneck, cfg.attention_bottleneck, cfg.mfa_channels = 16, 4, 4, 8
    model = BACKENDS.build(name, cfg, num_states=3, hidden_size=8)
    agg = model.values if name == "mhfa" else model.aggregate
    with torch.no_grad():
        agg.logits.copy_(torch.tensor([0.0, 1.0, 2.0]))
    assert torch.allclose(model.layer_weights(), torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0))


def test_defaults_follow_the_papers():
    def cfg(name):
        return parse_named(BACKENDS, {"name": name}, "backend")

    assert cfg("linear").embed_dim == 256
    e = cfg("ecapa_tdnn")
    assert (e.channels, e.embed_dim, e.dilations, e.scale) == (512, 192, [2, 3, 4], 8)
    lap = cfg("lap_astp")
    assert (lap.heads, lap.channels, lap.embed_dim, lap.dropout, lap.frame_drop) == (16, 512, 192, 0.1, 0.1)
    m = cfg("mhfa")
    assert (m.heads, m.compression_dim, m.embed_dim) == (32, 128, 256)
    a = cfg("adapter_mfa")  # WeSpeaker's w2vbert_s1_lora.yaml model_args
    assert (a.adapter_dim, a.num_layers, a.embed_dim, a.dropout) == (128, -1, 256, 0.0)


def test_adapter_mfa_size_on_w2v_bert_and_last_n_states():
    """25 states of 1024: per state 1024*128+128 + LN 256 + 128*128+128; ASTP over 25*128 channels
    (no global context: x alone) with a 128-wide attention; Linear(2*3200 -> 256)."""
    cfg = parse_named(BACKENDS, {"name": "adapter_mfa"}, "backend")
    model = BACKENDS.build("adapter_mfa", cfg, num_states=25, hidden_size=1024)
    c = 25 * 128
    expected = 25 * (1024 * 128 + 128 + 256 + 128 * 128 + 128) + (c * 128 + 128) + 256 + (128 * c + c)
    assert sum(p.numel() for p in model.parameters()) == expected + 2 * c * 256 + 256 == 6_160_640
    cfg = parse_named(BACKENDS, {"name": "adapter_mfa", "num_layers": 2, "adapter_dim": 4}, "backend")
    model = BACKENDS.build("adapter_mfa", cfg, num_states=5, hidden_size=8)
    h = torch.randn(5, 2, 7, 8, requires_grad=True)
    model(h, torch.ones(2, 7, dtype=torch.bool)).sum().backward()
    used = h.grad.abs().sum(dim=(1, 2, 3)) > 0
    assert used.tolist() == [False, False, False, True, True]  # only the last two states
    with pytest.raises(ValueError, match=r"num_layers=6 but the backbone has 5 hidden states"):
        BACKENDS.build(
            "adapter_mfa",
            parse_named(BACKENDS, {"name": "adapter_mfa", "num_layers": 6}, "backend"),
            num_states=5,
            hidden_size=8,
        )


def test_ecapa_rejects_channels_not_divisible_by_scale():
    cfg = parse_named(BACKENDS, {"name": "ecapa_tdnn", "channels": 20, "scale": 8}, "backend")
    with pytest.raises(ValueError, match="channels=20 must be divisible by scale=8"):
        BACKENDS.build("ecapa_tdnn", cfg, num_states=3, hidden_size=8)


@pytest.mark.parametrize(
    ("name", "fields", "num_states", "hidden", "millions"),
    [
        # WeSpeaker's published size of ECAPA_TDNN_GLOB_c512 on 80-d fbank (layer weights excluded below)
        ("ecapa_tdnn", {}, 1, 80, 6.19),
        # LAP paper: the lightweight back-end has 1.7M (Base, 13 states) to 2.3M (Large, 25) parameters
        ("lap_astp", {}, 13, 768, 1.71),
        ("lap_astp", {}, 25, 1024, 2.30),
    ],
)
def test_parameter_counts_match_published_models(name, fields, num_states, hidden, millions):
    cfg = parse_named(BACKENDS, {"name": name, **fields}, "backend")
    model = BACKENDS.build(name, cfg, num_states=num_states, hidden_size=hidden)
    n = sum(p.numel() for k, p in model.named_parameters() if not k.startswith("aggregate."))
    assert n / 1e6 == pytest.approx(millions, abs=0.01)
