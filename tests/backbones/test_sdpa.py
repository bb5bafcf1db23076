"""Attention through ``F.scaled_dot_product_attention`` (the default) gives the eager attention's states
and gradients in every family; WavLM's gated relative position bias goes in as the additive mask."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers.models.wavlm.modeling_wavlm import WavLMAttention

from spkpeft.backbones import load_backbone
from spkpeft.backbones.projections import (
    ModuleCallingWavLMAttention,
    SdpaWavLMAttention,
    restore_attention_classes,
    route_projections_through_modules,
    set_attention_implementation,
)

FAMILIES = ["tiny-wavlm", "tiny-hubert", "tiny-wav2vec2", "tiny-whisper", "tiny-w2v-bert"]


def _states_and_grad(bb, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
    """Hidden states (L+1, B, T, D) and the gradient of a weighted sum of them w.r.t. the first layer's
    q projection weight (so the backward through every attention is compared too)."""
    q = bb.layers[0].get_submodule(bb.spec.q_proj).weight
    q.requires_grad_(True)
    out = bb(wav, lengths).hidden_states
    (out * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
    return out.detach(), q.grad.clone()


@pytest.mark.parametrize("name", FAMILIES)
def test_sdpa_equals_eager_on_a_padded_batch(name: str) -> None:
    torch.manual_seed(0)
    sdpa = load_backbone(name).eval()
    torch.manual_seed(0)  # the same random weights (a deepcopy would share the attention-input closures)
    eager = load_backbone(name, attn_implementation="eager").eval()
    if name == "tiny-wavlm":
        kinds = {type(m) for m in sdpa.model.modules() if isinstance(m, WavLMAttention)}
        assert kinds == {SdpaWavLMAttention}
        assert not any(isinstance(m, SdpaWavLMAttention) for m in eager.model.modules())
    else:
        assert sdpa.model.config._attn_implementation == "sdpa"
        assert eager.model.config._attn_implementation == "eager"
    g = torch.Generator().manual_seed(1)
    wav, lengths = torch.randn(3, 6400, generator=g), torch.tensor([6400, 4000, 2500])
    s_states, s_grad = _states_and_grad(sdpa, wav, lengths)
    e_states, e_grad = _states_and_grad(eager, wav, lengths)
    torch.testing.assert_close(s_states, e_states, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(s_grad, e_grad, atol=2e-5, rtol=1e-4)


def test_wavlm_sdpa_uses_projection_modules_and_survives_routing_and_restore() -> None:
    attn = WavLMAttention(embed_dim=16, num_heads=2, num_buckets=8, max_distance=16).eval()
    fast = copy.deepcopy(attn)
    set_attention_implementation(fast, "sdpa")
    assert type(fast) is SdpaWavLMAttention
    x, mask = torch.randn(2, 7, 16), torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
    with torch.no_grad():
        ref, _, _ = attn(x, attention_mask=mask)
        out, weights, _ = fast(x, attention_mask=mask)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    assert weights is None
    # wrapped projections act (LoRA, SpectralFT), routing leaves it alone, restore keeps the kernel
    assert route_projections_through_modules(fast) == 0 and restore_attention_classes(fast) == 0
    fast.q_proj.register_forward_hook(lambda mod, i, o: 3 * o)
    with torch.no_grad():
        assert not torch.allclose(fast(x, attention_mask=mask)[0], out, atol=1e-4)
    set_attention_implementation(fast, "eager")
    assert type(fast) is ModuleCallingWavLMAttention  # eager, still calling its projection modules


def test_unknown_attention_implementation_is_refused() -> None:
    with pytest.raises(ValueError, match="'flash'; valid: sdpa, eager"):
        load_backbone("tiny-hubert", attn_implementation="flash")
