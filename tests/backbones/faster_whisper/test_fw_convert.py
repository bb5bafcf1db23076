"""faster-whisper (CTranslate2) -> transformers Whisper on tiny random models converted by CTranslate2
itself: weights, logits, tokenizer, generation config, feature extractor and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import (
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizer,
)

from spkpeft import cli
from spkpeft.backbones.faster_whisper import MARKER, convert_faster_whisper


@pytest.fixture(scope="module")
def converted(ct2_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("converted") / "hf"
    convert_faster_whisper(ct2_tiny, out)
    return out


def _features(model: WhisperForConditionalGeneration, batch: int = 2) -> torch.Tensor:
    """(B, n_mels, 2 * max_source_positions) random log-mel-like input."""
    cfg = model.config
    gen = torch.Generator().manual_seed(3)
    return torch.randn(batch, cfg.num_mel_bins, 2 * cfg.max_source_positions, generator=gen)


def test_float32_model_converts_to_identical_weights_and_logits(hf_tiny: Path, converted: Path) -> None:
    ref = WhisperForConditionalGeneration.from_pretrained(hf_tiny).eval()
    got = WhisperForConditionalGeneration.from_pretrained(converted).eval()
    ref_sd, got_sd = ref.state_dict(), got.state_dict()
    assert set(got_sd) == set(ref_sd)
    differ = [k for k in ref_sd if not torch.equal(ref_sd[k], got_sd[k])]
    assert differ == []
    assert got.proj_out.weight.data_ptr() == got.model.decoder.embed_tokens.weight.data_ptr()  # tied
    feats, dec = _features(ref), torch.tensor([[1, 5, 9, 2], [3, 3, 7, 0]])
    with torch.no_grad():
        a = ref(input_features=feats, decoder_input_ids=dec).logits
        b = got(input_features=feats, decoder_input_ids=dec).logits
    torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_float16_model_with_aliases_converts_exactly(
    ct2_tiny_fp16_default_init: tuple[Path, Path], tmp_path: Path
) -> None:
    hf, ct2 = ct2_tiny_fp16_default_init
    record = convert_faster_whisper(ct2, tmp_path / "out")
    assert record["stored_dtypes"] == ["float16"]
    ref = WhisperForConditionalGeneration.from_pretrained(hf).state_dict()
    got = WhisperForConditionalGeneration.from_pretrained(tmp_path / "out").state_dict()
    for key, value in ref.items():  # float16 -> float32 is exact: equal to the rounded original
        assert got[key].dtype == torch.float32
        assert torch.equal(got[key], value.half().float()), key


def test_tokenizer_has_every_vocabulary_token_at_its_id(ct2_tiny: Path, converted: Path) -> None:
    vocab = json.loads((ct2_tiny / "vocabulary.json").read_text())
    tok = WhisperTokenizer.from_pretrained(converted)
    assert len(tok) == len(vocab)
    assert tok.convert_tokens_to_ids(vocab) == list(range(len(vocab)))
    stamp = tok.convert_tokens_to_ids("<|0.00|>")
    assert stamp == tok.convert_tokens_to_ids("<|notimestamps|>") + 1 == tok.all_special_ids[-1] + 1
    assert tok.decode([stamp, stamp + 50], decode_with_timestamps=True) == "<|0.00|><|1.00|>"
    ids = tok("hello").input_ids
    assert ids[0] == tok.convert_tokens_to_ids("<|startoftranscript|>") and ids[-1] == tok.eos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == "hello"
    processor = WhisperProcessor.from_pretrained(converted)
    assert processor.tokenizer.pad_token == "<|endoftext|>"


def test_generation_and_feature_config_follow_the_ct2_directory(ct2_tiny: Path, converted: Path) -> None:
    ct2_cfg = json.loads((ct2_tiny / "config.json").read_text())
    vocab = json.loads((ct2_tiny / "vocabulary.json").read_text())
    model = WhisperForConditionalGeneration.from_pretrained(converted)
    gen = model.generation_config
    assert gen.suppress_tokens == ct2_cfg["suppress_ids"]
    assert gen.begin_suppress_tokens == ct2_cfg["suppress_ids_begin"]
    assert gen.alignment_heads == ct2_cfg["alignment_heads"]
    assert gen.decoder_start_token_id == vocab.index("<|startoftranscript|>")
    assert gen.eos_token_id == vocab.index("<|endoftext|>")
    assert gen.no_timestamps_token_id == vocab.index("<|notimestamps|>")
    assert gen.is_multilingual is False  # 1865 < 51865 tokens: English-only, as openai/whisper decides
    fe = WhisperFeatureExtractor.from_pretrained(converted)
    assert fe.feature_size == model.config.num_mel_bins
    assert fe.nb_max_frames == 2 * model.config.max_source_positions
    out = model.generate(_features(model, 1), max_new_tokens=3)
    assert out.shape[0] == 1 and out.shape[1] >= 1


def test_cli_convert_refuses_non_empty_out_dir_unless_forced(
    ct2_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "hf"
    assert cli.main(["-q", "convert", "faster-whisper", str(ct2_tiny), str(out)]) == 0
    assert "WhisperForConditionalGeneration" in capsys.readouterr().out
    assert (out / "model.safetensors").is_file() and (out / MARKER).is_file()
    assert cli.main(["-q", "convert", "faster-whisper", str(ct2_tiny), str(out)]) == 1
    assert "not empty" in capsys.readouterr().err
    (out / "stale.txt").write_text("from before")
    assert cli.main(["-q", "convert", "faster-whisper", str(ct2_tiny), str(out), "--force"]) == 0
    assert not (out / "stale.txt").exists() and (out / MARKER).is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["hf"]  # no temporary or backup directory left


def test_failed_conversion_leaves_nothing_behind(ct2_tiny: Path, tmp_path: Path) -> None:
    src = tmp_path / "ct2"
    src.mkdir()
    for f in ct2_tiny.iterdir():
        if f.name != "tokenizer.json":
            (src / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ValueError, match=r"tokenizer\.json is missing"):
        convert_faster_whisper(src, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct2"]
