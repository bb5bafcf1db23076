"""The ``model`` section of a TS-ASR config: which Whisper, which method, and the method's settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from spkpeft.methods.lora import LoraMethodConfig
from spkpeft.tsasr.prompts import PromptConfig


@dataclass
class LoraSection(LoraMethodConfig):
    """The speaker side's LoRA config (:mod:`spkpeft.methods.lora`, HF peft) with the paper's baseline:
    r 4, alpha 8 on ``q`` and ``v`` of every Whisper attention (encoder self-attention, decoder self- and
    cross-attention); ``name: dora`` gives DoRA."""

    r: int = 4
    alpha: float = 8.0
    targets: list[str] = field(default_factory=lambda: ["q", "v"])


@dataclass
class ModelConfig:
    """``whisper``: hub id or local directory (config, weights, tokenizer, feature extractor); ``method``: an
    entry of :data:`spkpeft.tsasr.methods.TSASR_METHODS`."""

    whisper: str = "openai/whisper-large-v2"
    method: str = "prompt"
    language: str = "en"
    task: str = "transcribe"
    prompts: PromptConfig = field(default_factory=PromptConfig)
    lora: LoraSection = field(default_factory=LoraSection)
    window_seconds: int | None = None  # encoder window; None = Whisper's own (30 s), see shorten_window
