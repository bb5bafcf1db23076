"""Methods on real recordings and on the pre-LN ("stable layer norm", large-model) layer variant."""

from __future__ import annotations

import pytest
import soundfile as sf
import torch

from spkpeft.backbones import load_backbone
from spkpeft.methods import METHODS

STABLE = dict(do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)
SMALL = dict(bottleneck=8, inter_bottleneck=8, prompt_length=4)


def _perturbed(name: str, bb):
    cls = METHODS.config_cls(name)
    method = METHODS.build(name, cls(**{k: v for k, v in SMALL.items() if k in cls.__dataclass_fields__}), bb)
    with torch.no_grad():
        for p in method.own_parameters().values():
            p.add_(0.1 * torch.randn_like(p))
    return method


@pytest.mark.parametrize("name", ["adapter", "unipet"])
def test_stable_layer_norm_variant_padding_and_gradients(name):
    bb = load_backbone("tiny-wavlm", **STABLE).eval()
    assert bb.stable_layer_norm
    method = _perturbed(name, bb)
    lengths = torch.tensor([4800, 3000])
    wav = torch.randn(2, 4800) * (torch.arange(4800)[None] < lengths[:, None])
    out = bb(wav, lengths)
    alone = bb(wav[1:, :3000]).hidden_states[:, 0]
    torch.testing.assert_close(out.hidden_states[:, 1, : alone.shape[1]], alone, atol=1e-5, rtol=0)
    method.adapt_aggregate(out.hidden_states.mean(0), out.mask).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in method.own_parameters().values())


def test_real_speech_padded_batch(real_speech):
    files = sorted((real_speech / "vctk").rglob("*.wav"))[:3]
    wavs = [torch.from_numpy(sf.read(f, dtype="float32")[0][:24000]) for f in files]
    lengths = torch.tensor([len(w) for w in wavs])
    batch = torch.zeros(len(wavs), int(lengths.max()))
    for i, w in enumerate(wavs):
        batch[i, : len(w)] = w
    bb = load_backbone("tiny-hubert").eval()
    _perturbed("unipet", bb)
    with torch.no_grad():
        out = bb(batch, lengths)
        for i, w in enumerate(wavs):
            alone = bb(w[None]).hidden_states[:, 0]
            torch.testing.assert_close(out.hidden_states[:, i, : alone.shape[1]], alone, atol=1e-5, rtol=0)
