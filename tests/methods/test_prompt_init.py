"""``prompt_init: frames``: each layer's prompts start as the mean of its real input frames plus 10 % of
their spread as noise (a data-dependent init, as Glow's ActNorm), set once on one forward."""

from __future__ import annotations

import pytest
import torch

from spkpeft.backbones import load_backbone
from spkpeft.backbones.frames import BackboneHook
from spkpeft.methods import METHODS
from spkpeft.methods.prompt_bank import NOISE, PromptBank


def _frames() -> tuple[torch.Tensor, torch.Tensor]:
    h = torch.randn(2, 10, 8) * torch.linspace(0.5, 2.0, 8) + 3.0
    speech = torch.ones(2, 10, dtype=torch.bool)
    speech[1, 6:] = False
    h[1, 6:] = 1e6  # padding: must not count
    return h, speech


def test_prompts_start_at_the_mean_real_frame_with_a_tenth_of_its_spread():
    torch.manual_seed(0)
    bank = PromptBank(2, 64, 8)
    h, speech = _frames()

    def forward() -> None:
        bank.observe(0, h, speech)
        bank.observe(1, 2 * h, speech)

    bank.init_from_frames(forward)
    real = h[speech]
    for layer, scale in ((0, 1.0), (1, 2.0)):
        p = bank.prompts[layer].detach()
        mean, std = scale * real.mean(0), scale * real.std(0)
        assert torch.allclose(p.mean(0), mean, atol=0.1 * std.max().item())  # padding (1e6) left out
        ratio = (p - mean).std(0) / std  # per dimension
        assert ((ratio > 0.6 * NOISE) & (ratio < 1.5 * NOISE)).all(), ratio
    before = bank.prompts.detach().clone()
    bank.observe(0, h + 100, speech)  # outside init_from_frames: no effect
    assert torch.equal(bank.prompts.detach(), before)


def test_a_layer_the_forward_never_reaches_is_an_error():
    bank = PromptBank(2, 4, 8)
    h, speech = _frames()
    with pytest.raises(RuntimeError, match=r"never reached the prompts of layer\(s\) \[1\]"):
        bank.init_from_frames(lambda: bank.observe(0, h, speech))
    with pytest.raises(ValueError, match="layer 0 saw 1 real frame"):
        bank.init_from_frames(lambda: bank.observe(0, h[:1, :1], speech[:1, :1]))


@pytest.mark.parametrize("name", ["prompt", "deep_prompt", "unipet"])
def test_each_prompt_method_sets_its_prompts_from_the_backbone_frames(name):
    bb = load_backbone("tiny-wavlm").eval()
    cfg = METHODS.config_cls(name)(prompt_length=3, prompt_init="frames")
    method = METHODS.build(name, cfg, bb)
    xavier = method.prompts.prompts.detach().clone()
    wav, lengths = torch.randn(2, 4000), torch.tensor([4000, 2500])
    with torch.no_grad():
        method.data_init(lambda: bb(wav, lengths))
    now = method.prompts.prompts.detach()
    assert not torch.isclose(now, xavier).any()  # every prompt of every layer was set
    # layer 0's input is the front end's output, which no prompt changes: its real frames' mean
    seen = {}
    handle = bb.add_hook(_Capture(seen))
    method.detach()
    with torch.no_grad():
        bb(wav, lengths)
    handle.remove()
    h, speech = seen[0]
    real = h[speech]
    bound = 4 * NOISE * real.std(0) / 3**0.5  # 4 sigma of the mean of 3 noise draws, per dimension
    assert ((now[0].mean(0) - real.mean(0)).abs() <= bound).all()


def test_unknown_prompt_init_is_refused():
    bb = load_backbone("tiny-wavlm")
    cfg = METHODS.config_cls("deep_prompt")(prompt_init="zeros")
    with pytest.raises(ValueError, match="deep_prompt.prompt_init='zeros'; valid: xavier, frames"):
        METHODS.build("deep_prompt", cfg, bb)


class _Capture(BackboneHook):
    """A backbone hook that records each layer's input (h, real-frame mask) and changes nothing."""

    def __init__(self, seen: dict) -> None:
        self.seen = seen

    def before_layer(self, i, h, frames):  # noqa: ANN001, ANN201
        self.seen[i] = (h.detach().clone(), frames.speech_mask(h))
        return h, frames
