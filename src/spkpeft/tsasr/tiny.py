"""A tiny Whisper built locally, for tests and the synthetic demo: a byte-level BPE tokenizer with every
special token Whisper's tokenizer and ``generate`` rely on, a small random config with a shortened input
window, and a matching feature extractor and generation config. Nothing is downloaded.

Token layout (as in the real multilingual Whisper): the 256 byte symbols, optional merges, then
``<|endoftext|>``, ``<|startoftranscript|>``, one token per language of
``transformers.models.whisper.tokenization_whisper.LANGUAGES`` (in that order), ``<|translate|>``,
``<|transcribe|>``, ``<|startoflm|>``, ``<|startofprev|>``, ``<|nospeech|>``, ``<|notimestamps|>`` and the
1501 timestamp tokens ``<|0.00|>`` ... ``<|30.00|>``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperTokenizer,
)
from transformers.models.whisper.tokenization_whisper import LANGUAGES

log = logging.getLogger(__name__)

TASK_TOKENS = ["<|translate|>", "<|transcribe|>"]
EXTRA_TOKENS = ["<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (what byte-level BPE vocabularies use)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def special_tokens() -> list[str]:
    """Whisper's special tokens in id order (see the module docstring)."""
    langs = [f"<|{code}|>" for code in LANGUAGES]
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    return ["<|endoftext|>", "<|startoftranscript|>", *langs, *TASK_TOKENS, *EXTRA_TOKENS, *stamps]


def build_tiny_tokenizer(out_dir: str | Path, merges: list[tuple[str, str]] = ()) -> WhisperTokenizer:
    """Write ``vocab.json``/``merges.txt`` (byte-level, no merges by default) and return the tokenizer.

    The special tokens are added as added tokens right after the byte vocabulary, so
    ``<|startoftranscript|> + 1 + i`` is the i-th language, as ``WhisperTokenizer.prefix_tokens`` assumes.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = {ch: i for i, ch in enumerate(_bytes_to_unicode().values())}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    for tok in special_tokens():
        vocab[tok] = len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    tok = WhisperTokenizer(
        vocab=str(out / "vocab.json"), merges=str(out / "merges.txt"), language="en", task="transcribe"
    )
    tok.add_special_tokens({"additional_special_tokens": special_tokens()[2:]})
    return tok


def tiny_config(tokenizer: WhisperTokenizer, chunk_seconds: int = 2, **overrides: object) -> WhisperConfig:
    """A random Whisper config of width 64, 2+2 layers, with ``chunk_seconds`` of input (100 frames/s, 2x
    conv stride: ``max_source_positions = 50 * chunk_seconds``)."""
    ids = tokenizer.convert_tokens_to_ids
    kw = dict(
        vocab_size=len(tokenizer),
        num_mel_bins=80,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=50 * chunk_seconds,
        max_target_positions=96,
        pad_token_id=ids("<|endoftext|>"),
        bos_token_id=ids("<|endoftext|>"),
        eos_token_id=ids("<|endoftext|>"),
        decoder_start_token_id=ids("<|startoftranscript|>"),
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        begin_suppress_tokens=None,
        suppress_tokens=None,
    )
    kw.update(overrides)
    return WhisperConfig(**kw)


def generation_config(tokenizer: WhisperTokenizer, config: WhisperConfig) -> GenerationConfig:
    """The Whisper generation fields ``WhisperForConditionalGeneration.generate`` reads (language/task maps,
    timestamp and prompt token ids)."""
    ids = tokenizer.convert_tokens_to_ids
    return GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        pad_token_id=config.pad_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        max_length=config.max_target_positions,
        is_multilingual=True,
        lang_to_id={f"<|{c}|>": ids(f"<|{c}|>") for c in LANGUAGES},
        task_to_id={"translate": ids("<|translate|>"), "transcribe": ids("<|transcribe|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        max_initial_timestamp_index=50,
        begin_suppress_tokens=[ids("<|endoftext|>")],
        suppress_tokens=[],
    )


def build_tiny_whisper(
    out_dir: str | Path, chunk_seconds: int = 2, seed: int = 0, **overrides: object
) -> Path:
    """Save a random tiny Whisper (model, tokenizer, feature extractor, generation config) to ``out_dir``,
    loadable with ``from_pretrained(out_dir)`` like any hub checkpoint. Returns ``out_dir``."""
    import torch

    out = Path(out_dir)
    tok = build_tiny_tokenizer(out)
    cfg = tiny_config(tok, chunk_seconds, **overrides)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(cfg)
    model.generation_config = generation_config(tok, cfg)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    WhisperFeatureExtractor(feature_size=80, chunk_length=chunk_seconds).save_pretrained(out)
    log.info("built tiny Whisper (%d parameters) in %s", sum(p.numel() for p in model.parameters()), out)
    return out


__all__ = ["build_tiny_tokenizer", "build_tiny_whisper", "generation_config", "special_tokens", "tiny_config"]
