"""The w2v-BERT 2.0 family: the fbank front end against ``SeamlessM4TFeatureExtractor``, equality with
transformers' ``Wav2Vec2BertModel`` (padded batches included), padding exactness, lengths, loading."""

from __future__ import annotations

import pytest
import soundfile as sf
import torch
from transformers import SeamlessM4TFeatureExtractor

from spkpeft.backbones import load_backbone
from spkpeft.backbones.hf import load_hf_model

FE = SeamlessM4TFeatureExtractor()
# Normalised features are O(1); both compute the spectrum in float64 (transformers stores it as complex64).
FEATURE_ATOL = 1e-4


@pytest.fixture(scope="module")
def bb():
    torch.manual_seed(0)
    return load_backbone("tiny-w2v-bert").eval()


def _reference(wavs: list[torch.Tensor]):
    """transformers' own features of a list of clips: (B, T, 160) and the (B, T) attention mask."""
    out = FE([w.numpy() for w in wavs], sampling_rate=16000, return_tensors="pt")
    return out.input_features, out.attention_mask


def _padded(wavs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(w) for w in wavs])
    batch = torch.zeros(len(wavs), int(lengths.max()))
    for i, w in enumerate(wavs):
        batch[i, : len(w)] = w
    return batch, lengths


@pytest.mark.parametrize("n", [560, 3_333, 16_000, 16_240, 48_123])
def test_features_equal_the_feature_extractor(bb, n):
    """Frame for frame on the clip's own frames; odd fbank counts drop the half pair the extractor masks."""
    wav = 0.1 * torch.randn(1, n)
    ours = bb.front_end.features(wav, torch.tensor([n]))
    ref, mask = _reference([wav[0]])
    t = ((n - 400) // 160 + 1) // 2
    assert ours.shape == (1, t, 160) and int(mask.sum()) == t == int(bb.frame_lengths(torch.tensor([n])))
    torch.testing.assert_close(ours, ref[:, :t], atol=FEATURE_ATOL, rtol=0)


def test_traceable_front_end_equals_forward(bb):
    """The ONNX form (framing, DC removal, pre-emphasis, window and DFT as one float32 convolution)."""
    lengths = torch.tensor([16_000, 9_001])
    wav = 0.1 * torch.randn(2, 16_000) * (torch.arange(16_000)[None] < lengths[:, None])
    with torch.no_grad():
        ours, ref = bb.front_end.traceable(wav, lengths), bb.front_end(wav, lengths)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)


def test_states_equal_transformers_on_a_padded_batch(bb):
    """Our padded batch against Wav2Vec2BertModel on the extractor's padded batch with its attention mask."""
    wavs = [0.1 * torch.randn(n) for n in (24_000, 17_777, 5_000)]
    feats, att = _reference(wavs)
    with torch.no_grad():
        ref = bb.model(feats, attention_mask=att, output_hidden_states=True)
        ours = bb(*_padded(wavs))
    assert ours.hidden_states.shape[0] == bb.num_layers + 1 == len(ref.hidden_states)
    t = ours.hidden_states.shape[2]
    assert ours.mask.sum(1).tolist() == att.sum(1).tolist()
    for i, state in enumerate(ref.hidden_states):
        expected = state[:, :t] * att[:, :t, None]  # transformers leaves padded frames non-zero
        torch.testing.assert_close(ours.hidden_states[i], expected, atol=2e-4, rtol=0)
    torch.testing.assert_close(
        ours.hidden_states[-1], ref.last_hidden_state[:, :t] * att[:, :t, None], atol=2e-4, rtol=0
    )


def test_padding_exactness_and_lengths(bb, assert_padding_exact):
    assert_padding_exact(bb, torch.tensor([32_000, 20_001, 3_333, 560]), [99, 61, 9, 1], atol=1e-5)
    with pytest.raises(ValueError, match="too short for the w2v-bert-2.0 front end"):
        bb(torch.zeros(1, 559))


def test_fbank_runs_without_autograd_and_full_trains_the_projection(bb):
    proj = bb.model.feature_projection.projection
    proj.weight.requires_grad_(True)
    try:
        seen = []
        handle = proj.register_forward_hook(lambda m, a, o: seen.append(a[0].requires_grad))
        bb(torch.randn(1, 8000)).hidden_states[-1].pow(2).sum().backward()
        handle.remove()
    finally:
        proj.weight.requires_grad_(False)
    assert seen == [False]  # the fbank builds no graph
    assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0
    proj.weight.grad = None


def test_loads_a_saved_directory(tmp_path):
    torch.manual_seed(1)
    model, spec = load_hf_model("tiny-w2v-bert")
    model.save_pretrained(tmp_path)
    bb = load_backbone(tmp_path).eval()
    assert bb.spec.name == "w2v-bert-2.0" and type(bb.model).__name__ == "Wav2Vec2BertModel"
    assert not any(p.requires_grad for p in bb.parameters())
    wav = 0.1 * torch.randn(1, 8000)
    feats, att = _reference([wav[0]])
    with torch.no_grad():
        ref = model.eval()(feats, attention_mask=att).last_hidden_state
        torch.testing.assert_close(bb(wav).hidden_states[-1], ref[:, : int(att.sum())], atol=2e-4, rtol=0)


def test_real_speech_features_and_padded_batch(bb, real_speech):
    files = sorted((real_speech / "librispeech-test-other").rglob("*.flac"))[:3]
    wavs = [torch.from_numpy(sf.read(f, dtype="float32")[0]) for f in files]
    batch, lengths = _padded(wavs)
    feats, att = _reference(wavs)
    ours = bb.front_end.features(batch, lengths)
    torch.testing.assert_close(
        ours, feats[:, : ours.shape[1]] * att[:, : ours.shape[1], None], atol=FEATURE_ATOL, rtol=0
    )
    with torch.no_grad():
        out = bb(batch, lengths)
        alone = bb(batch[2:, : lengths[2]]).hidden_states[:, 0]
    t = alone.shape[1]
    torch.testing.assert_close(out.hidden_states[:, 2, :t], alone, atol=1e-4, rtol=0)
