"""SpeechBackbone: equality with transformers, padding invariance, CNN without autograd, hooks, meta."""

from __future__ import annotations

import pytest
import torch

from spkpeft.backbones import BackboneHook, Frames, load_backbone
from spkpeft.backbones.attention_inputs import ATTENTION_INPUTS
from spkpeft.backbones.families import FAMILIES, family_spec
from spkpeft.backbones.front_ends import FRONT_ENDS
from spkpeft.backbones.positions import POSITIONS
from spkpeft.backbones.presets import PRESETS

TINY = ["tiny-wavlm", "tiny-hubert", "tiny-wav2vec2"]
STABLE = dict(do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)
VARIANTS = [(n, {}) for n in TINY] + [(n, STABLE) for n in TINY]
IDS = [n for n in TINY] + [f"{n}-stable" for n in TINY]


def _backbone(name: str, **ov):
    bb = load_backbone(name, normalize_wav=False, **ov)
    return bb.eval()


@pytest.mark.parametrize(("name", "ov"), VARIANTS, ids=IDS)
def test_matches_transformers_hidden_states(name, ov):
    bb = _backbone(name, **ov)
    wav = torch.randn(2, 8000)
    with torch.no_grad():
        ours = bb(wav).hidden_states
        ref = bb.model(wav, output_hidden_states=True)
    assert ours.shape == (bb.num_layers + 1, 2, 25, bb.hidden_size)
    # transformers 5 returns the last layer's raw output; the stable variant's final norm is last_hidden_state
    for i in range(bb.num_layers):
        torch.testing.assert_close(ours[i], ref.hidden_states[i], atol=1e-5, rtol=0)
    torch.testing.assert_close(ours[-1], ref.last_hidden_state, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("name", "ov"), VARIANTS, ids=IDS)
def test_padded_batch_equals_each_utterance_alone(name, ov):
    bb = _backbone(name, **ov)
    lengths = torch.tensor([8000, 5120, 3333])
    wav = torch.zeros(3, 8000)
    for i, n in enumerate(lengths):
        wav[i, :n] = torch.randn(int(n))
    with torch.no_grad():
        out = bb(wav, lengths)
        frames = bb.frame_lengths(lengths)
        assert out.mask.sum(1).tolist() == frames.tolist()
        for i, n in enumerate(lengths.tolist()):
            alone = bb(wav[i : i + 1, :n]).hidden_states[:, 0]
            t = int(frames[i])
            torch.testing.assert_close(out.hidden_states[:, i, :t], alone, atol=1e-5, rtol=0)
            assert out.hidden_states[:, i, t:].abs().sum() == 0  # padded frames are zero in every state


def test_equal_lengths_run_the_cnn_once():
    bb = _backbone("tiny-hubert")
    calls = []
    bb.feature_encoder.register_forward_hook(lambda m, a, o: calls.append(a[0].shape))
    bb(torch.randn(2, 4000), torch.tensor([3200, 3200]))
    assert calls == [torch.Size([2, 3200])]
    calls.clear()
    bb(torch.randn(2, 4000), torch.tensor([4000, 3200]))  # group-norm CNN: per utterance
    assert calls == [torch.Size([1, 4000]), torch.Size([1, 3200])]


def test_frozen_cnn_runs_without_autograd_but_layers_pass_gradients():
    bb = _backbone("tiny-wavlm")
    assert bb.feature_encoder_frozen and not any(p.requires_grad for p in bb.parameters())
    seen = []
    bb.feature_encoder.register_forward_hook(lambda m, a, o: seen.append(o.requires_grad))
    extra = torch.nn.Parameter(torch.zeros(bb.hidden_size))

    class AddBias(BackboneHook):
        def before_layer(self, i, h, frames):
            return h + extra, frames

    bb.add_hook(AddBias())
    out = bb(torch.randn(1, 4000)).hidden_states
    out[-1].pow(2).sum().backward()
    assert seen == [False]
    assert extra.grad is not None and extra.grad.abs().sum() > 0


def test_unfrozen_cnn_gets_gradients():
    bb = _backbone("tiny-wav2vec2")
    bb.feature_encoder.requires_grad_(True)
    assert not bb.feature_encoder_frozen
    bb(torch.randn(1, 4000)).hidden_states[-1].sum().backward()
    assert all(p.grad is not None for p in bb.feature_encoder.parameters())


class _Prefix(BackboneHook):
    """Prepends P zero frames to every layer and strips them after it; counts FFN calls."""

    def __init__(self, p: int, d: int) -> None:
        self.p, self.d, self.ffn_lengths = p, d, []

    def before_layer(self, i, h, frames):
        return frames.prepend(h, torch.zeros(h.shape[0], self.p, self.d))

    def ffn(self, i, x, y, frames):
        self.ffn_lengths.append((x.shape[1], frames.num_prefix))
        return y

    def after_layer(self, i, h, frames):
        return frames.strip(h, self.p)


ALL_FAMILIES = [*TINY, "tiny-whisper", "tiny-w2v-bert"]  # one tiny preset per registered family


def test_tiny_presets_cover_every_family_and_every_family_part():
    """Each registered family has a tiny preset here, and every registered front end, positional scheme
    and attention-input scheme is used by a family (so the family matrix runs it)."""
    assert sorted(PRESETS[p].family for p in ALL_FAMILIES) == FAMILIES.names()
    specs = [family_spec(n) for n in FAMILIES.names()]
    assert sorted({s.front_end for s in specs}) == FRONT_ENDS.names()
    assert sorted({s.positions for s in specs}) == POSITIONS.names()
    assert sorted({s.attention for s in specs}) == ATTENTION_INPUTS.names()


@pytest.mark.parametrize("name", ALL_FAMILIES)
def test_hooks_prefix_frames_never_reach_states_and_handle_removes(name):
    bb = _backbone(name)
    wav, lengths = torch.randn(2, 6000), torch.tensor([6000, 4000])
    with torch.no_grad():
        base = bb(wav, lengths)
        hook = _Prefix(3, bb.hidden_size)
        handle = bb.add_hook(hook)
        hooked = bb(wav, lengths)
        handle.remove()
        again = bb(wav, lengths)
    t = base.hidden_states.shape[2]
    assert hooked.hidden_states.shape == base.hidden_states.shape
    assert hook.ffn_lengths == [(t + 3, 3)] * bb.num_layers
    assert not torch.allclose(hooked.hidden_states[-1], base.hidden_states[-1])  # prefix is attended
    torch.testing.assert_close(hooked.hidden_states[0], base.hidden_states[0])
    torch.testing.assert_close(again.hidden_states, base.hidden_states)


def test_frames_helpers():
    h = torch.randn(2, 4, 3)
    f = Frames(torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool))
    h2, f2 = f.prepend(h, torch.ones(2, 2, 3))
    assert h2.shape == (2, 6, 3) and f2.num_prefix == 2
    assert f2.speech_mask(h2).tolist()[0] == [False, False, True, True, True, False]
    h3, f3 = f2.strip(h2, 2)
    assert torch.equal(h3, h) and torch.equal(f3.mask, f.mask) and f3.num_prefix == 0
    with pytest.raises(ValueError, match="only 0"):
        f.strip(h, 1)


def test_bad_inputs_are_clear_errors():
    bb = _backbone("tiny-hubert")
    with pytest.raises(ValueError, match=r"\(B, S\)"):
        bb(torch.randn(4000))
    with pytest.raises(ValueError, match="lengths"):
        bb(torch.randn(2, 4000), torch.tensor([5000, 10]))
    with pytest.raises(ValueError, match="too short"):
        bb(torch.randn(2, 4000), torch.tensor([4000, 100]))


def test_normalize_wav_default_follows_cnn_norm():
    assert load_backbone("tiny-hubert").normalize_wav is False
    bb = load_backbone("tiny-hubert", **STABLE).eval()
    assert bb.normalize_wav is True
    wav = torch.randn(1, 4000)
    with torch.no_grad():  # scale invariance comes from the normalisation
        torch.testing.assert_close(bb(wav).hidden_states, bb(wav * 7 + 0.3).hidden_states, atol=1e-4, rtol=0)


def test_loads_from_save_pretrained_dir(tmp_path):
    bb = _backbone("tiny-wavlm")
    bb.model.save_pretrained(tmp_path)
    bb2 = load_backbone(tmp_path, normalize_wav=False).eval()
    assert bb2.spec.name == "wavlm" and bb2.num_layers == 2
    wav = torch.randn(1, 4000)
    with torch.no_grad():
        torch.testing.assert_close(bb(wav).hidden_states, bb2(wav).hidden_states)


def test_meta_device_large():
    bb = load_backbone("wavlm-large", device="meta")
    assert bb.device.type == "meta" and bb.num_layers == 24 and bb.hidden_size == 1024
    assert bb.stable_layer_norm and bb.normalize_wav
    assert 300e6 < sum(p.numel() for p in bb.parameters()) < 320e6
