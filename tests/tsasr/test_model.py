"""Prompt slots inside the frozen Whisper: parameters, gradients, fold, loss masking, generation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spkpeft.tsasr.model import ModelConfig, TSWhisper
from spkpeft.tsasr.prompts import PromptConfig
from spkpeft.tsasr.slots import IGNORE

E = 12


def _model(path, **prompt_kw) -> TSWhisper:  # noqa: ANN001
    kw = dict(length=4)
    kw.update(prompt_kw)
    method = kw.pop("method", "prompt")
    return TSWhisper.from_config(ModelConfig(whisper=str(path), method=method, prompts=PromptConfig(**kw)), E)


def _batch(model: TSWhisper, n: int = 2):  # noqa: ANN202
    rng = np.random.default_rng(0)
    wavs = [rng.standard_normal(int(16000 * s)).astype(np.float32) * 0.1 for s in (0.9, 0.6)[:n]]
    ids, labels = model.decoder_inputs(["ab cd", "e"][:n])
    return model.features(wavs), torch.randn(n, E), ids, labels


def test_only_prompts_train_and_get_gradients(tiny_whisper) -> None:  # noqa: ANN001
    m = _model(tiny_whisper, reparam=True)
    names = set(m.trainable_parameters())
    assert names and all(n.startswith("prompts.") for n in names)
    assert not any(p.requires_grad for p in m.whisper.parameters())
    feats, spk, ids, labels = _batch(m)
    m.train()
    assert not m.whisper.training  # Whisper stays in eval mode
    m(feats, spk, ids, labels).backward()
    for n, p in m.trainable_parameters().items():
        assert p.grad is not None and p.grad.abs().sum() > 0, n


def test_depths_are_separate_and_validated(tiny_whisper) -> None:  # noqa: ANN001
    m = _model(tiny_whisper, encoder_depth=1, decoder_depth=None)
    assert m.prompts.encoder.depth == 1 and m.prompts.decoder.depth == 2
    with pytest.raises(ValueError, match="encoder_depth=3"):
        _model(tiny_whisper, encoder_depth=3)


def test_fold_keeps_outputs_identical(tiny_whisper) -> None:  # noqa: ANN001
    m = _model(tiny_whisper, reparam=True)
    with torch.no_grad():  # move the MLPs away from their init so folding has something to do
        for p in m.prompts.encoder_mlps.parameters():
            p.add_(0.3 * torch.randn_like(p))
    feats, spk, ids, labels = _batch(m)
    with torch.no_grad():
        before = m(feats, spk, ids, labels)
        gen_before = m.generate(feats, spk, max_new_tokens=6)
        m.prompts.fold()
        after = m(feats, spk, ids, labels)
        gen_after = m.generate(feats, spk, max_new_tokens=6)
    assert m.prompts.folded and not any("mlps" in n for n in m.trainable_parameters())
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)
    assert torch.equal(gen_after, gen_before)


def test_labels_ignore_slots_and_padding(tiny_whisper) -> None:  # noqa: ANN001
    m = _model(tiny_whisper, length=5)
    ids, labels = m.decoder_inputs(["ab", "abc de"])
    prev = m.tokenizer.convert_tokens_to_ids("<|startofprev|>")
    sot = m.tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    assert ids[0, 0] == prev and ids[0, 6] == sot  # 1 + P slots, then Whisper's prefix
    assert (labels[:, :6] == IGNORE).all()  # positions predicting fillers and <|sot|>
    assert labels[0, 6] == m.tokenizer.convert_tokens_to_ids("<|en|>")
    eot = m.tokenizer.eos_token_id
    assert (labels[0] == eot).sum() == 1 and (labels[0] == IGNORE).sum() == labels.shape[1] - (len("ab") + 4)


def test_speaker_slot_changes_the_encoding(tiny_whisper) -> None:  # noqa: ANN001
    m = _model(tiny_whisper)
    feats, spk, ids, labels = _batch(m)
    enc = m.whisper.model.encoder
    with torch.no_grad():
        with m._conditioned(spk):
            a = enc(feats).last_hidden_state
        with m._conditioned(spk + 1.0):
            b = enc(feats).last_hidden_state
    assert (a - b).abs().max() > 1e-3  # the slot is seen by every frame through self-attention
    with pytest.raises(RuntimeError, match="speaker embedding"):
        m(feats, None, ids, labels)


def test_encoder_slots_are_reserved_and_length_checked(tiny_whisper) -> None:  # noqa: ANN001
    m = _model(tiny_whisper, length=4)
    wav = np.ones(16000, dtype=np.float32) * 0.1
    plain = _model(tiny_whisper, method="frozen").features([wav])
    shifted = m.features([wav])
    n = 2 * m.encoder_slots
    assert (shifted[..., :n] == 0).all()
    torch.testing.assert_close(shifted[..., n:], plain[..., :-n])
    with pytest.raises(ValueError, match="does not fit"):
        m.features([np.ones(int(16000 * 1.95), dtype=np.float32)])


@pytest.mark.parametrize("timestamps", [False, True])
def test_generate_matches_teacher_forcing_and_hides_slots(tiny_whisper, timestamps: bool) -> None:  # noqa: ANN001
    """Greedy generation (with its KV cache) must reproduce the argmax of the teacher-forced pass over its
    own output: the slot hooks act the same in both. The returned ids never contain the slots."""
    m = _model(tiny_whisper, length=4)
    feats, spk, _, _ = _batch(m, 1)
    out = m.generate(feats, spk, return_timestamps=timestamps, max_new_tokens=8)
    tok = m.tokenizer
    prefix = m.prompt_ids() + tok.prefix_tokens[: 3 if timestamps else 4]
    assert tok.convert_tokens_to_ids("<|startofprev|>") not in out[0].tolist()
    seq = torch.tensor([prefix + out[0].tolist()])
    with torch.no_grad(), m._conditioned(spk):
        logits = m.whisper(input_features=feats, decoder_input_ids=seq, use_cache=False).logits
    # generate applies Whisper's logits processors (suppression, timestamp rules); compare where they allow
    pred = logits[0, len(prefix) - 1 : -1].argmax(-1)
    if not timestamps:
        assert torch.equal(pred[: out.shape[1]], out[0])
    else:
        assert out.shape[1] >= 1
    beams = m.generate(feats, spk, num_beams=3, max_new_tokens=8)
    assert tok.convert_tokens_to_ids("<|startofprev|>") not in beams[0].tolist()


def test_lora_and_full_baselines(tiny_whisper) -> None:  # noqa: ANN001
    lora = _model(tiny_whisper, method="lora")
    names = set(lora.trainable_parameters())
    assert any("lora_A" in n and "q_proj" in n for n in names) and any("v_proj" in n for n in names)
    assert not any("k_proj" in n for n in names)
    assert all(n.startswith("prompts.") or "lora_" in n for n in names)
    full = _model(tiny_whisper, method="full")
    assert all(p.requires_grad for p in full.whisper.parameters())
    assert lora.trainable_fraction() < full.trainable_fraction()
    feats, spk, ids, labels = _batch(lora)
    lora(feats, spk, ids, labels).backward()
    assert all(p.grad is not None for p in lora.trainable_parameters().values())
