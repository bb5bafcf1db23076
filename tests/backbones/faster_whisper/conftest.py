"""Tiny random Whisper models in CTranslate2 format, written by CTranslate2's own converter (the oracle for
the model.bin layout and the variable mapping)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ct2_helpers import ct2_converter

COPY_FILES = ["tokenizer.json", "preprocessor_config.json"]


@pytest.fixture(scope="session")
def hf_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny transformers Whisper (2+2 layers, width 64) whose every parameter, biases and norms included,
    is random, so a swapped or transposed weight in the mapping cannot go unnoticed."""
    from transformers import WhisperForConditionalGeneration

    from spkpeft.tsasr.tiny import build_tiny_whisper

    out = build_tiny_whisper(tmp_path_factory.mktemp("hf_tiny"))
    model = WhisperForConditionalGeneration.from_pretrained(out)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def ct2_tiny(hf_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``hf_tiny`` converted by CTranslate2 to float32 (what ``ct2-transformers-converter`` writes)."""
    out = tmp_path_factory.mktemp("ct2") / "fp32"
    ct2_converter()(str(hf_tiny), copy_files=COPY_FILES).convert(str(out), quantization="float32")
    return out


@pytest.fixture(scope="session")
def ct2_tiny_fp16_default_init(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(transformers dir, float16 CTranslate2 dir) of a default-initialised tiny Whisper: zero biases and
    unit norms, so the converter aliases most variables to one another (as in faster-whisper models)."""
    from spkpeft.tsasr.tiny import build_tiny_whisper

    hf = build_tiny_whisper(tmp_path_factory.mktemp("hf_default"))
    out = tmp_path_factory.mktemp("ct2") / "fp16"
    ct2_converter()(str(hf), copy_files=COPY_FILES).convert(str(out), quantization="float16")
    return hf, out
