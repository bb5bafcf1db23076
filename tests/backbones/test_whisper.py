"""The Whisper encoder family: equality with transformers on a full 30 s window, the log-mel against
``WhisperFeatureExtractor``, variable length and padding, loading from whole-model directories, limits."""

from __future__ import annotations

import pytest
import soundfile as sf
import torch
from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperModel

from spkpeft.backbones import load_backbone
from spkpeft.backbones.hf import build_config

WINDOW = 480_000  # 30 s at 16 kHz


@pytest.fixture(scope="module")
def bb():
    torch.manual_seed(0)
    return load_backbone("tiny-whisper").eval()


def _features(wav: torch.Tensor) -> torch.Tensor:
    """transformers' own log-mel of one clip (padded to 30 s): (1, 80, 3000)."""
    fe = WhisperFeatureExtractor(feature_size=80)
    return fe(wav[0].numpy(), sampling_rate=16000, return_tensors="pt").input_features


def test_full_window_equals_transformers_whisper_encoder(bb):
    wav = 0.1 * torch.randn(1, WINDOW)
    with torch.no_grad():
        ours = bb(wav).hidden_states
        ref = bb.model(_features(wav), output_hidden_states=True)
    assert ours.shape == (bb.num_layers + 1, 1, 1500, bb.hidden_size)
    for i in range(bb.num_layers):  # transformers 5: the last layer's raw output, then the final norm
        torch.testing.assert_close(ours[i], ref.hidden_states[i], atol=1e-5, rtol=0)
    torch.testing.assert_close(ours[-1], ref.last_hidden_state, atol=1e-5, rtol=0)


@pytest.mark.parametrize("n", [WINDOW, WINDOW + 100, 123_456, 3_333])
def test_log_mel_equals_the_feature_extractor(bb, n):
    """Frame for frame on the clip's own frames (n // 160), whether or not the clip fills the window."""
    wav = 0.1 * torch.randn(1, n)
    mel = bb.front_end.log_mel(wav, torch.tensor([n]))
    assert mel.shape == (1, 80, min(n, WINDOW) // 160)
    torch.testing.assert_close(mel, _features(wav)[..., : mel.shape[2]], atol=1e-5, rtol=0)


def test_variable_length_frames_and_padding_exactness(bb, assert_padding_exact):
    assert_padding_exact(bb, torch.tensor([48_000, 30_001, 3_333, 320]), [150, 94, 10, 1], atol=1e-5)


def test_frozen_convs_run_without_autograd_and_gradients_reach_hooks(bb):
    seen = []
    handle = bb.feature_encoder.register_forward_hook(
        lambda m, a, o: seen.append((a[0].requires_grad, o.grad_fn))
    )
    extra = torch.nn.Parameter(torch.zeros(bb.hidden_size))

    class AddBias(torch.nn.Module):
        def before_layer(self, i, h, frames):
            return h + extra, frames

        def ffn(self, i, x, y, frames):
            return y

        def after_layer(self, i, h, frames):
            return h, frames

    hook = bb.add_hook(AddBias())
    try:
        bb(torch.randn(1, 8000)).hidden_states[-1].pow(2).sum().backward()
    finally:
        hook.remove()
        handle.remove()
    assert seen == [(False, None)]  # the log-mel and the frozen convolutions build no graph
    assert extra.grad is not None and extra.grad.abs().sum() > 0


def test_clip_longer_than_the_position_table_is_refused(bb):
    with pytest.raises(ValueError, match=r"utterance\(s\) \[1\] too long .*1500.*crop or chunk"):
        bb(torch.zeros(2, WINDOW + 160), torch.tensor([1000, WINDOW + 160]))
    with pytest.raises(ValueError, match="too short for the whisper front end"):
        bb(torch.zeros(1, 100))


@pytest.mark.parametrize("cls", [WhisperForConditionalGeneration, WhisperModel])
def test_loads_the_encoder_of_a_whole_whisper_directory(tmp_path, cls):
    cfg, _ = build_config("tiny-whisper")
    torch.manual_seed(1)
    whole = cls(cfg).eval()
    whole.save_pretrained(tmp_path)
    bb = load_backbone(tmp_path).eval()
    assert bb.spec.name == "whisper" and type(bb.model).__name__ == "WhisperEncoder"
    wav = 0.1 * torch.randn(1, WINDOW)
    with torch.no_grad():
        ref = whole.get_encoder()(_features(wav)).last_hidden_state
        torch.testing.assert_close(bb(wav).hidden_states[-1], ref, atol=1e-5, rtol=0)


def test_whole_directory_missing_encoder_weights_is_refused(tmp_path):
    cfg, _ = build_config("tiny-whisper")
    model = WhisperModel(cfg)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("encoder.layers.1.")}
    model.save_pretrained(tmp_path, state_dict=state)
    with pytest.raises(ValueError, match=rf"{tmp_path}: the checkpoint lacks \d+ whisper encoder weight"):
        load_backbone(tmp_path)


def test_real_speech_padded_batch(bb, real_speech):
    files = sorted((real_speech / "librispeech-test-other").rglob("*.flac"))[:3]
    wavs = [torch.from_numpy(sf.read(f, dtype="float32")[0]) for f in files]
    lengths = torch.tensor([len(w) for w in wavs])
    batch = torch.zeros(len(wavs), int(lengths.max()))
    for i, w in enumerate(wavs):
        batch[i, : len(w)] = w
    with torch.no_grad():
        out = bb(batch, lengths)
        alone = bb(batch[2:, : lengths[2]]).hidden_states[:, 0]
    t = alone.shape[1]
    assert t == (int(lengths[2]) // 160 - 1) // 2 + 1
    torch.testing.assert_close(out.hidden_states[:, 2, :t], alone, atol=1e-4, rtol=0)
