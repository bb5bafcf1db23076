"""Target-speaker Whisper: a frozen ``WhisperForConditionalGeneration`` plus what is trained for the task.

``method`` names an entry of :data:`spkpeft.tsasr.methods.TSASR_METHODS`:
- ``prompt``: only :class:`~spkpeft.tsasr.prompts.TSPrompts` train (about 1 % of a large Whisper).
- ``lora``: the same speaker slot and prompts, plus LoRA (r 4 on q and v) through :mod:`spkpeft.methods.lora`.
- ``full``: the same speaker slot and prompts, plus every Whisper weight (the full fine-tuning baseline).
- ``frozen``: plain Whisper, no slots (the reference the others are measured against).

Whisper stays in eval mode in every case (no dropout), as in the reference recipe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperTokenizer

from spkpeft.data.config import SAMPLE_RATE
from spkpeft.tsasr.methods import TSASR_METHODS
from spkpeft.tsasr.model_config import LoraSection, ModelConfig
from spkpeft.tsasr.prompts import TSPrompts
from spkpeft.tsasr.slots import IGNORE, SlotHooks, shift_features

log = logging.getLogger(__name__)

__all__ = ["LoraSection", "ModelConfig", "TSWhisper", "shorten_window"]


class TSWhisper(nn.Module):
    """Args: the loaded Whisper parts, the method name, and the speaker embedding size E."""

    def __init__(
        self,
        whisper: WhisperForConditionalGeneration,
        tokenizer: WhisperTokenizer,
        feature_extractor: WhisperFeatureExtractor,
        cfg: ModelConfig,
        speaker_dim: int,
    ) -> None:
        super().__init__()
        entry = TSASR_METHODS.entry(cfg.method)  # an unknown name: RegistryError listing the valid ones
        self.cfg, self.speaker_dim = cfg, speaker_dim
        self.tokenizer, self.feature_extractor = tokenizer, feature_extractor
        self.whisper = whisper
        self.multilingual = bool(getattr(whisper.generation_config, "is_multilingual", True))
        if self.multilingual:
            tokenizer.set_prefix_tokens(language=cfg.language, task=cfg.task, predict_timestamps=False)
        else:  # English-only (*.en): <|startoftranscript|><|notimestamps|>, no language or task token
            tokenizer.language, tokenizer.task = None, None
            tokenizer.set_prefix_tokens(predict_timestamps=False)
        if cfg.window_seconds is not None:
            shorten_window(whisper, feature_extractor, cfg.window_seconds)
        whisper.requires_grad_(False)
        self.weights = entry.builder(cfg, whisper)  # what trains inside Whisper (None: nothing)
        self.prompts: TSPrompts | None = None
        self.hooks: SlotHooks | None = None
        if entry.config_cls.CONDITIONED:
            c = whisper.config
            self.prompts = TSPrompts(cfg.prompts, c.d_model, c.encoder_layers, c.decoder_layers, speaker_dim)
            self.hooks = SlotHooks(whisper, self.prompts)
        self.train(False)

    @classmethod
    def from_config(cls, cfg: ModelConfig, speaker_dim: int) -> TSWhisper:
        """Load ``cfg.whisper`` (hub id, transformers directory, faster-whisper directory or the bundled
        ``whisper-tiny.en``) and attach the method."""
        from spkpeft.backbones.faster_whisper import resolve_whisper_source

        source = resolve_whisper_source(cfg.whisper)
        try:
            whisper = WhisperForConditionalGeneration.from_pretrained(source, trust_remote_code=False)
            tok = WhisperTokenizer.from_pretrained(source)
            fe = WhisperFeatureExtractor.from_pretrained(source)
        except OSError as e:
            raise FileNotFoundError(
                f"cannot load Whisper {cfg.whisper!r} (hub id or local dir): {e}"
            ) from None
        return cls(whisper, tok, fe, cfg, speaker_dim)

    def train(self, mode: bool = True) -> TSWhisper:
        """Only the added modules follow ``mode``; Whisper itself always stays in eval mode."""
        super().train(mode)
        self.whisper.eval()
        return self

    # ---- what trains ----
    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """name -> parameter of everything the method trains."""
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """What trains, by group: ``prompt`` (slots, speaker projection) and what the method trains inside
        Whisper (``lora``: the injected LoRA; ``backbone``: Whisper's own weights); empty groups left
        out. The union is :meth:`trainable_parameters` (checked)."""
        groups = {"prompt": list(self.prompts.parameters())} if self.prompts is not None else {}
        if self.weights is not None:
            groups.update(self.weights.param_groups())
        groups = {g: ps for g, ps in groups.items() if ps}
        declared = TSASR_METHODS.config_cls(self.cfg.method).GROUPS
        if not set(groups) <= set(declared) or {id(p) for ps in groups.values() for p in ps} != {
            id(p) for p in self.trainable_parameters().values()
        }:
            raise RuntimeError(
                f"method {self.cfg.method!r}: its groups {sorted(groups)} do not cover exactly what trains "
                f"(declared {list(declared)})"
            )
        return groups

    def trainable_fraction(self) -> float:
        base = sum(p.numel() for n, p in self.whisper.named_parameters() if "lora_" not in n)
        return sum(p.numel() for p in self.trainable_parameters().values()) / base

    # ---- inputs ----
    @property
    def encoder_slots(self) -> int:
        return self.prompts.encoder_slots if self.prompts is not None else 0

    def features(self, wavs: Sequence[np.ndarray], sampling_rate: int = SAMPLE_RATE) -> torch.Tensor:
        """16 kHz waveforms -> (B, 80, N) log-mel with the encoder slots reserved (see :mod:`slots`)."""
        fe = self.feature_extractor
        if sampling_rate != fe.sampling_rate:
            raise ValueError(f"audio must be at {fe.sampling_rate} Hz, got {sampling_rate}")
        longest = max(len(w) for w in wavs)
        if longest > fe.n_samples:
            raise ValueError(
                f"audio of {longest / sampling_rate:.2f} s exceeds Whisper's {fe.chunk_length} s window"
            )
        feats = fe(list(wavs), sampling_rate=sampling_rate, return_tensors="pt").input_features
        lengths = torch.tensor([len(w) // fe.hop_length for w in wavs])
        return shift_features(feats, self.encoder_slots, lengths)

    def prompt_ids(self) -> list[int]:
        """``<|startofprev|>`` + P fillers: the decoder slots (empty for ``frozen``)."""
        if self.prompts is None:
            return []
        prev = self.tokenizer.convert_tokens_to_ids("<|startofprev|>")
        return [prev] + [self.tokenizer.eos_token_id] * self.prompts.cfg.length

    def decoder_inputs(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Transcripts -> (decoder_input_ids (B, U), labels (B, U)); labels are -100 on slots and padding."""
        prompt = self.prompt_ids()
        seqs = [prompt + self.tokenizer(t).input_ids for t in texts]  # prefix tokens + text + eot
        u = max(len(s) for s in seqs) - 1
        if u > self.whisper.config.max_target_positions:
            raise ValueError(f"a transcript of {u} tokens exceeds max_target_positions")
        ids = torch.full((len(seqs), u), self.tokenizer.eos_token_id, dtype=torch.long)
        labels = torch.full((len(seqs), u), IGNORE, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s) - 1] = torch.tensor(s[:-1])
            labels[i, : len(s) - 1] = torch.tensor(s[1:])
        labels[:, : len(prompt)] = IGNORE  # positions that predict the fillers and <|startoftranscript|>
        return ids, labels

    # ---- compute ----
    def forward(
        self,
        features: torch.Tensor,
        speaker: torch.Tensor | None,
        decoder_input_ids: torch.Tensor,
        labels: torch.Tensor,
    ) -> torch.Tensor:
        """Teacher-forced cross-entropy over the transcript tokens.

        features (B, 80, N) from :meth:`features`; speaker (B, E); decoder_input_ids/labels (B, U).
        """
        with self._conditioned(speaker):
            out = self.whisper(
                input_features=features, decoder_input_ids=decoder_input_ids, labels=labels, use_cache=False
            )
        return out.loss

    @torch.no_grad()
    def generate(
        self,
        features: torch.Tensor,
        speaker: torch.Tensor | None,
        num_beams: int = 1,
        return_timestamps: bool = False,
        max_new_tokens: int | None = None,
    ) -> torch.Tensor:
        """Whisper's own ``generate`` (language/task tokens, timestamps, beam search) with the slots."""
        prompt = self.prompt_ids()
        kw: dict = dict(num_beams=num_beams)
        if self.multilingual:
            kw.update(language=self.cfg.language, task=self.cfg.task)
        if prompt:
            kw["prompt_ids"] = torch.tensor(prompt, device=features.device)
        if max_new_tokens is None:
            max_new_tokens = self.whisper.config.max_target_positions // 2 - len(prompt) - 4
        with self._conditioned(speaker):
            return self.whisper.generate(
                input_features=features,
                return_timestamps=return_timestamps,
                max_new_tokens=max_new_tokens,
                **kw,
            )

    def decode(self, ids: torch.Tensor) -> list[str]:
        """Token ids -> text without special tokens, slots or timestamps."""
        return [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def transcribe(
        self, wavs: Sequence[np.ndarray], speaker: torch.Tensor | None, num_beams: int = 1
    ) -> list[str]:
        """16 kHz mixtures + (B, E) target embeddings -> the target speaker's transcripts."""
        feats = self.features(wavs).to(self._device())
        spk = speaker.to(self._device()) if speaker is not None else None
        return self.decode(self.generate(feats, spk, num_beams=num_beams))

    def _device(self) -> torch.device:
        return next(self.whisper.parameters()).device

    def _conditioned(self, speaker: torch.Tensor | None):  # noqa: ANN202
        if self.hooks is None:
            from contextlib import nullcontext

            return nullcontext()
        return self.hooks.speaker(speaker)


def shorten_window(
    whisper: WhisperForConditionalGeneration, feature_extractor: WhisperFeatureExtractor, seconds: int
) -> None:
    """Run the encoder on a ``seconds`` window instead of Whisper's 30 s (whisper.cpp's ``--audio-ctx``):
    keep the first ``50 * seconds`` positional embeddings and make the feature extractor pad to
    ``100 * seconds`` mel frames. The encoder's cost drops about ``30 / seconds``-fold (more for attention);
    the model was trained on 30 s windows only, so its accuracy changes: measure it on clean audio."""
    fe_window = feature_extractor.n_samples // feature_extractor.sampling_rate
    if not 1 <= seconds <= fe_window:
        raise ValueError(f"model.window_seconds={seconds} must be between 1 and Whisper's {fe_window} s")
    enc = whisper.model.encoder
    positions = seconds * feature_extractor.sampling_rate // feature_extractor.hop_length // 2
    old = enc.embed_positions
    enc.embed_positions = nn.Embedding(positions, old.embedding_dim).requires_grad_(False)
    with torch.no_grad():
        enc.embed_positions.weight.copy_(old.weight[:positions])
    enc.max_source_positions = positions
    whisper.config.max_source_positions = positions
    enc.config.max_source_positions = positions
    feature_extractor.chunk_length = seconds
    feature_extractor.n_samples = seconds * feature_extractor.sampling_rate
    feature_extractor.nb_max_frames = feature_extractor.n_samples // feature_extractor.hop_length
