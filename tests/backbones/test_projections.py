"""WavLM attention routed through its projection modules: same outputs, and wrapped projections act."""

from __future__ import annotations

import copy

import torch
from transformers.models.wavlm.modeling_wavlm import WavLMAttention

from spkpeft.backbones import load_backbone
from spkpeft.backbones.projections import (
    ModuleCallingWavLMAttention,
    restore_attention_classes,
    route_projections_through_modules,
)


def test_routed_wavlm_equals_transformers_on_a_padded_batch() -> None:
    bb = load_backbone("tiny-wavlm", attn_implementation="eager").eval()
    routed = copy.deepcopy(bb)
    assert route_projections_through_modules(routed.model) == 2
    assert route_projections_through_modules(routed.model) == 0  # idempotent
    wav, lengths = torch.randn(3, 6000), torch.tensor([6000, 4100, 2500])
    with torch.no_grad():
        a, b = bb(wav, lengths), routed(wav, lengths)
    torch.testing.assert_close(b.hidden_states, a.hidden_states, atol=1e-6, rtol=1e-5)
    assert restore_attention_classes(routed.model) == 2
    assert all(type(m) is not ModuleCallingWavLMAttention for m in routed.model.modules())


def test_routed_attention_weights_match_and_projection_hooks_act() -> None:
    attn = WavLMAttention(embed_dim=16, num_heads=2, num_buckets=8, max_distance=16).eval()
    routed = copy.deepcopy(attn)
    route_projections_through_modules(routed)
    x, mask = torch.randn(2, 7, 16), torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
    with torch.no_grad():
        out_a, w_a, _ = attn(x, attention_mask=mask)
        out_b, w_b, _ = routed(x, attention_mask=mask)
    torch.testing.assert_close(out_b, out_a)
    torch.testing.assert_close(w_b, w_a)
    assert w_b.shape == (2, 2, 7, 7) and bool((w_b[1, :, :, 5:] == 0).all())  # padded keys get no weight
    # The original reads q_proj.weight directly: a hook on the module is ignored there, honoured here.
    for m in (attn, routed):
        m.q_proj.register_forward_hook(lambda mod, i, o: 3 * o)
    with torch.no_grad():
        assert torch.equal(attn(x, attention_mask=mask)[0], out_a)
        assert not torch.allclose(routed(x, attention_mask=mask)[0], out_b, atol=1e-4)
