"""The transformers side of a faster-whisper conversion: model, config, tokenizer, feature extractor and
generation config, built from a CTranslate2 Whisper directory's files.

A faster-whisper directory holds ``model.bin`` (weights), ``config.json`` (CTranslate2's Whisper config:
``suppress_ids``, ``suppress_ids_begin``, ``lang_ids``, ``alignment_heads``), the vocabulary
(``vocabulary.json`` or ``vocabulary.txt``, one token per id: the authority on ids) and ``tokenizer.json``
(the BPE tokenizer; faster-whisper's copy stops at ``<|notimestamps|>``, so the 1501 timestamp tokens
``<|0.00|>`` ... ``<|30.00|>`` of the vocabulary are added here as ordinary added tokens, as in the hub's
Whisper tokenizers). ``preprocessor_config.json`` is used when present (large-v3: 128 mel bins).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperTokenizer,
)
from transformers.models.whisper.tokenization_whisper import LANGUAGES

from spkpeft.backbones.ct2_reader import Ct2FormatError
from spkpeft.backbones.ct2_whisper import WhisperWeights

log = logging.getLogger(__name__)

EOT, SOT, NO_TIMESTAMPS = "<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"
MULTILINGUAL_VOCAB = 51865  # openai/whisper: a model is multilingual iff n_vocab >= 51865
FRAMES_PER_SECOND = 100  # Whisper's mel hop of 160 samples at 16 kHz
DEFAULT_MAX_INITIAL_TIMESTAMP_INDEX = 50
TIMESTAMP = re.compile(r"<\|\d+\.\d\d\|>")
CONTROL = re.compile(r"<\|[^|]+\|>")  # <|startoftranscript|>, <|en|>, ...: special, except timestamps


def read_vocabulary(ct2_dir: Path) -> list[str]:
    """The id -> token list CTranslate2 decodes with (``vocabulary.json``, else ``vocabulary.txt``)."""
    as_json, as_txt = ct2_dir / "vocabulary.json", ct2_dir / "vocabulary.txt"
    if as_json.is_file():
        vocab = json.loads(as_json.read_text(encoding="utf-8"))
    elif as_txt.is_file():
        vocab = as_txt.read_text(encoding="utf-8").split("\n")
        if vocab and vocab[-1] == "":
            vocab.pop()
    else:
        raise Ct2FormatError(
            f"{ct2_dir} has neither vocabulary.json nor vocabulary.txt: a CTranslate2 Whisper directory "
            "holds its vocabulary beside model.bin"
        )
    for tok in (EOT, SOT, NO_TIMESTAMPS):
        if tok not in vocab:
            raise Ct2FormatError(f"the vocabulary of {ct2_dir} has no {tok}: not a Whisper vocabulary")
    return vocab


def read_ct2_config(ct2_dir: Path) -> dict[str, Any]:
    """CTranslate2's ``config.json`` (empty with a warning when absent: no token suppression then)."""
    path = ct2_dir / "config.json"
    if not path.is_file():
        log.warning("%s is missing: the converted model gets no suppress_tokens / alignment_heads", path)
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise Ct2FormatError(f"{path} is not valid JSON ({e})") from None


def whisper_config(weights: WhisperWeights, vocab: list[str]) -> WhisperConfig:
    """The transformers config of the converted model (sizes from the weights, ids from the vocabulary)."""
    if len(vocab) != weights.dims["vocab_size"]:
        raise Ct2FormatError(
            f"the vocabulary has {len(vocab)} tokens but decoder/embeddings/weight has "
            f"{weights.dims['vocab_size']} rows; vocabulary and model.bin do not belong together"
        )
    eot, sot = vocab.index(EOT), vocab.index(SOT)
    return WhisperConfig(
        **weights.dims,
        activation_function="gelu",
        scale_embedding=False,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
        tie_word_embeddings=weights.tied,
        architectures=["WhisperForConditionalGeneration"],
    )


def build_model(weights: WhisperWeights, config: WhisperConfig) -> WhisperForConditionalGeneration:
    """``WhisperForConditionalGeneration`` holding ``weights``; every key of the model must be filled and
    every weight must have a key (strict), with matching shapes."""
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    expected, got = set(model.state_dict()), set(weights.state)
    if expected != got:
        raise Ct2FormatError(
            "the CTranslate2 -> transformers key mapping does not match this transformers version's "
            f"WhisperForConditionalGeneration: missing {sorted(expected - got)[:5]}, "
            f"unexpected {sorted(got - expected)[:5]}"
        )
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    if weights.tied:
        model.proj_out.weight = model.model.decoder.embed_tokens.weight
    return model.eval()


def build_tokenizer(ct2_dir: Path, vocab: list[str]) -> WhisperTokenizer:
    """The Whisper tokenizer of ``ct2_dir/tokenizer.json`` with the vocabulary's missing tail (timestamp
    tokens) added; checked to give every vocabulary entry its id."""
    from tokenizers import AddedToken, Tokenizer

    path = ct2_dir / "tokenizer.json"
    if not path.is_file():
        raise Ct2FormatError(
            f"{path} is missing: converting needs Whisper's tokenizer (faster-whisper directories ship "
            "it; with ct2-transformers-converter pass --copy_files tokenizer.json)"
        )
    spec = json.loads(path.read_text(encoding="utf-8"))
    for added in spec.get("added_tokens", []):  # timestamps are ordinary tokens (the hub's convention,
        if TIMESTAMP.fullmatch(added["content"]):  # which WhisperTokenizer's timestamp decoding relies on)
            added["special"] = False
    base = Tokenizer.from_str(json.dumps(spec))
    specials = [t for t in vocab if CONTROL.fullmatch(t) and not TIMESTAMP.fullmatch(t) and t != EOT]
    tok = WhisperTokenizer(
        tokenizer_object=base,
        unk_token=EOT,
        bos_token=EOT,
        eos_token=EOT,
        pad_token=EOT,
        additional_special_tokens=specials,
    )
    if len(tok) > len(vocab):
        raise Ct2FormatError(f"{path} has {len(tok)} tokens, more than the vocabulary's {len(vocab)}")
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in vocab[len(tok) :]])
    ids = tok.convert_tokens_to_ids(vocab)
    wrong = next((i for i, j in enumerate(ids) if i != j), None)
    if wrong is not None:
        raise Ct2FormatError(
            f"{path} gives token {vocab[wrong]!r} id {ids[wrong]}, but the vocabulary has it at id {wrong}"
        )
    return tok


def generation_config(config: WhisperConfig, vocab: list[str], ct2_cfg: dict[str, Any]) -> GenerationConfig:
    """What ``generate`` reads: start / end / no-timestamps ids, CTranslate2's suppress lists, alignment
    heads and, for multilingual vocabularies, the language and task tokens."""
    ids = {t: i for i, t in enumerate(vocab)}
    multilingual = len(vocab) >= MULTILINGUAL_VOCAB
    extra: dict[str, Any] = {}
    if multilingual:
        extra["lang_to_id"] = {f"<|{c}|>": ids[f"<|{c}|>"] for c in LANGUAGES if f"<|{c}|>" in ids}
        extra["task_to_id"] = {t: ids[f"<|{t}|>"] for t in ("transcribe", "translate")}
    if ct2_cfg.get("alignment_heads"):
        extra["alignment_heads"] = [list(h) for h in ct2_cfg["alignment_heads"]]
    return GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        max_length=config.max_target_positions,
        is_multilingual=multilingual,
        no_timestamps_token_id=ids[NO_TIMESTAMPS],
        prev_sot_token_id=ids.get("<|startofprev|>"),
        max_initial_timestamp_index=DEFAULT_MAX_INITIAL_TIMESTAMP_INDEX,
        suppress_tokens=list(ct2_cfg.get("suppress_ids") or []),
        begin_suppress_tokens=list(ct2_cfg.get("suppress_ids_begin") or []),
        return_timestamps=False,
        **extra,
    )


def feature_extractor(ct2_dir: Path, config: WhisperConfig) -> WhisperFeatureExtractor:
    """``preprocessor_config.json`` of ``ct2_dir`` when present, else Whisper's log-mel front end with the
    model's mel bins and input window (2 x ``max_source_positions`` frames)."""
    frames = 2 * config.max_source_positions
    if frames % FRAMES_PER_SECOND:
        raise Ct2FormatError(
            f"max_source_positions {config.max_source_positions} is not a whole number of seconds of "
            f"input ({frames} frames at {FRAMES_PER_SECOND}/s)"
        )
    if (ct2_dir / "preprocessor_config.json").is_file():
        fe = WhisperFeatureExtractor.from_pretrained(str(ct2_dir))
    else:
        fe = WhisperFeatureExtractor(
            feature_size=config.num_mel_bins, chunk_length=frames // FRAMES_PER_SECOND
        )
    if fe.feature_size != config.num_mel_bins or fe.nb_max_frames != frames:
        raise Ct2FormatError(
            f"{ct2_dir / 'preprocessor_config.json'}: feature_size {fe.feature_size} and "
            f"{fe.nb_max_frames} frames, but the model takes {config.num_mel_bins} mel bins x {frames} frames"
        )
    return fe
