"""UniPET-SPK specifics: gate values and statistics, paper defaults, the 5.4 % parameter share."""

from __future__ import annotations

import math

import pytest
import torch

from spkpeft.backbones import load_backbone
from spkpeft.backbones.backbone import get_module
from spkpeft.methods import METHODS
from spkpeft.methods.unipet import UniPETConfig


def test_paper_defaults():
    cfg = UniPETConfig()
    assert (cfg.bottleneck, cfg.scale, cfg.prompt_length) == (256, 0.5, 30)
    assert METHODS.config_cls("deep_prompt")().prompt_length == 30
    assert METHODS.config_cls("prompt")().prompt_length == 30
    assert (METHODS.config_cls("adapter")().bottleneck, METHODS.config_cls("adapter")().scale) == (256, 0.5)


def test_gate_stats_per_layer_start_open_and_unsaturated():
    bb = load_backbone("tiny-wavlm").eval()
    method = METHODS.build("unipet", UniPETConfig(bottleneck=8, prompt_length=4), bb)
    assert method.stats() == {}
    with torch.no_grad():
        bb(torch.randn(2, 4000), torch.tensor([4000, 3000]))
    stats = method.stats()
    expected = {f"gate/{k}/{i}" for k in ("adapter", "prompt") for i in range(bb.num_layers)}
    assert set(stats) == expected
    for v in stats.values():
        assert v == pytest.approx(1 / (1 + math.exp(-1.0)), abs=1e-6)  # w = 0, b = 1 at init


def test_gates_ignore_padding_and_prompt_frames():
    """The gate of a padded utterance equals its gate alone: padding and prompts are not averaged in."""
    bb = load_backbone("tiny-hubert").eval()
    method = METHODS.build("unipet", UniPETConfig(bottleneck=8, prompt_length=4), bb)
    with torch.no_grad():
        for g in [*method.adapter_gates, *method.prompt_gates]:
            g.proj.weight.normal_()
        wav = torch.randn(2, 6400)
        wav[1, 3200:] = 0
        bb(wav, torch.tensor([6400, 3200]))
        batch = {k: v[1] for k, v in method._last_gates.items()}
        bb(wav[1:, :3200])
        alone = {k: v[0] for k, v in method._last_gates.items()}
    for k in batch:
        torch.testing.assert_close(batch[k], alone[k], atol=1e-5, rtol=0)
    assert len({round(float(v), 4) for v in batch.values()}) > 1  # the gates really read the input


def test_prompt_gate_scales_the_prompts():
    """With the prompt gate closed (g = 0) the prompts are zero vectors, which still differ from none."""
    bb = load_backbone("tiny-hubert").eval()
    method = METHODS.build("unipet", UniPETConfig(bottleneck=8, prompt_length=4), bb)
    wav = torch.randn(1, 4000)
    with torch.no_grad():
        open_out = bb(wav).hidden_states
        for g in method.prompt_gates:
            g.proj.bias.fill_(-1e4)
        closed = bb(wav).hidden_states
        method.prompts.prompts.zero_()
        zero_prompts = bb(wav).hidden_states
    assert not torch.allclose(open_out, closed)
    torch.testing.assert_close(closed, zero_prompts)


def test_unipet_updates_about_5_4_percent_of_wavlm_base_plus():
    """Paper: 5.4 % of parameters updated = method / (backbone + method), on WavLM Base+."""
    bb = load_backbone("wavlm-base-plus", device="meta")
    method = METHODS.build("unipet", UniPETConfig(), bb)
    n_method = sum(p.numel() for p in method.own_parameters().values())
    n_backbone = sum(p.numel() for p in bb.parameters())
    share = n_method / (n_backbone + n_method)
    assert share == pytest.approx(0.054, abs=0.003), (n_method, n_backbone, share)


def test_gates_read_speech_frames_of_their_inputs():
    """Prompt gate: the layer input without prompts; adapter gate: the FFN input without prompt frames."""
    bb = load_backbone("tiny-wav2vec2").eval()
    p = 4
    method = METHODS.build("unipet", UniPETConfig(bottleneck=8, prompt_length=p), bb)
    ffn_in = []
    ffn = get_module(bb.layers[1], bb.spec.ffn_in)
    ffn.register_forward_pre_hook(lambda m, a: ffn_in.append(a[0]))
    with torch.no_grad():
        for g in [*method.adapter_gates, *method.prompt_gates]:
            g.proj.weight.normal_()
        out = bb(torch.randn(2, 6400), torch.tensor([6400, 4000]))
    real = out.mask.float()

    def expected(gate, h):
        s = torch.sigmoid(gate.proj(h)).squeeze(-1)
        return (s * real).sum(1) / real.sum(1)

    x = ffn_in[0]
    assert x.shape[1] == p + out.mask.shape[1]
    torch.testing.assert_close(
        method._last_gates["gate/adapter/1"], expected(method.adapter_gates[1], x[:, p:])
    )
    h1 = out.hidden_states[1]  # the input of layer 1 (prompts of layer 0 already stripped)
    torch.testing.assert_close(method._last_gates["gate/prompt/1"], expected(method.prompt_gates[1], h1))
