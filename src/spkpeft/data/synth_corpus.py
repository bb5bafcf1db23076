"""The synthetic speaker corpus: procedural voices written as audio files + a lhotse manifest.

Speaker ``g`` (global index) is ``syn{g:05d}``; its traits come from ``(seed, g)`` only, so
``speaker_offset`` selects disjoint speakers of the same population (train vs test) and any subset is
reproducible. Utterance ``u`` of speaker ``g`` comes from ``(seed, g, u)``. Cut ids are
``syn00003/syn00003-007``; the supervision carries ``speaker`` and the unit transcript as ``text``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from spkpeft import progress
from spkpeft.data.audio import write_audio
from spkpeft.data.config import SAMPLE_RATE
from spkpeft.data.make_trials import make_trials
from spkpeft.data.manifest import CutSet, make_cut, save_manifest
from spkpeft.data.synth import DEFAULT_DIFFICULTY, SpeakerTraits, sample_speaker, synthesize
from spkpeft.data.synth_units import random_text
from spkpeft.data.trials import Trial, write_trials

log = logging.getLogger(__name__)
AUDIO_FORMATS = ("flac", "wav")


@dataclass
class SynthConfig:
    speakers: int = 20
    utterances: int = 10
    seed: int = 0
    difficulty: float = DEFAULT_DIFFICULTY
    speaker_offset: int = 0
    min_seconds: float = 1.5
    max_seconds: float = 4.0
    audio_format: str = "flac"

    def __post_init__(self) -> None:
        if self.speakers < 1 or self.utterances < 1:
            raise ValueError(f"need >= 1 speaker and utterance, got {self.speakers} x {self.utterances}")
        if not 0.0 <= self.difficulty <= 1.0:
            raise ValueError(f"difficulty must be in [0, 1], got {self.difficulty}")
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ValueError(
                f"need 0 < min_seconds <= max_seconds, got {self.min_seconds}, {self.max_seconds}"
            )
        if self.audio_format not in AUDIO_FORMATS:
            raise ValueError(f"audio_format must be one of {AUDIO_FORMATS}, got {self.audio_format!r}")


def speaker_id(g: int) -> str:
    return f"syn{g:05d}"


def speaker_traits(seed: int, g: int, difficulty: float = DEFAULT_DIFFICULTY) -> SpeakerTraits:
    """The persistent traits of global speaker ``g`` in the population of ``seed``."""
    return sample_speaker(np.random.default_rng((seed, 0, g)), difficulty)


def synth_utterance(seed: int, g: int, u: int, cfg: SynthConfig) -> tuple[np.ndarray, str]:
    """Utterance ``u`` of speaker ``g``: (float32 (S,) 16 kHz, transcript)."""
    traits = speaker_traits(seed, g, cfg.difficulty)
    rng = np.random.default_rng((seed, 1, g, u))
    target = rng.uniform(cfg.min_seconds, cfg.max_seconds)
    for _ in range(20):  # draw texts until the rendering lands inside [min, max] seconds
        text = random_text(rng, target * 0.8, traits.rate)
        wav = synthesize(traits, text, rng, difficulty=cfg.difficulty)
        if cfg.min_seconds <= len(wav) / SAMPLE_RATE <= cfg.max_seconds:
            break
        target = (target + (cfg.min_seconds + cfg.max_seconds) / 2) / 2
    return wav, text


def synth_corpus(out_dir: str | Path, cfg: SynthConfig, manifest_name: str = "manifest.jsonl.gz") -> CutSet:
    """Write ``cfg.speakers`` x ``cfg.utterances`` utterances under ``out_dir/audio`` and the manifest
    ``out_dir/manifest_name`` (plus ``speakers.json`` with each speaker's traits)."""
    out = Path(out_dir)
    cuts, traits = [], {}
    speakers = range(cfg.speaker_offset, cfg.speaker_offset + cfg.speakers)
    bar = progress.bar(total=cfg.speakers * cfg.utterances, desc="synth")
    for g in speakers:
        spk = speaker_id(g)
        traits[spk] = asdict(speaker_traits(cfg.seed, g, cfg.difficulty))
        for u in range(cfg.utterances):
            wav, text = synth_utterance(cfg.seed, g, u, cfg)
            path = out / "audio" / spk / f"{spk}-{u:03d}.{cfg.audio_format}"
            write_audio(path, wav, SAMPLE_RATE)
            cuts.append(make_cut(path.resolve(), f"{spk}/{spk}-{u:03d}", speaker=spk, text=text))
            bar.update()
    bar.close()
    cutset = CutSet.from_cuts(cuts)
    save_manifest(cutset, out / manifest_name)
    (out / f"{manifest_name.split('.')[0]}_speakers.json").write_text(json.dumps(traits, indent=1) + "\n")
    log.info("wrote %d utterances of %d speakers to %s", len(cuts), cfg.speakers, out)
    return cutset


def synth_demo(
    out_dir: str | Path,
    train_speakers: int = 20,
    test_speakers: int = 10,
    utterances: int = 10,
    seed: int = 0,
    targets: int = 200,
    nontargets: int = 200,
    **synth_kw: float | str,
) -> dict[str, Path]:
    """Train and test corpora with disjoint speakers plus a balanced trial list over the test set.

    Writes ``train.jsonl.gz``, ``test.jsonl.gz`` and ``trials.txt`` into ``out_dir``; returns their paths.
    """
    out = Path(out_dir)
    train_cfg = SynthConfig(speakers=train_speakers, utterances=utterances, seed=seed, **synth_kw)
    test_cfg = SynthConfig(
        speakers=test_speakers, utterances=utterances, seed=seed, speaker_offset=train_speakers, **synth_kw
    )
    synth_corpus(out, train_cfg, "train.jsonl.gz")
    test = synth_corpus(out, test_cfg, "test.jsonl.gz")
    by_spk: dict[str, list[str]] = {}
    for c in test:
        by_spk.setdefault(c.supervisions[0].speaker, []).append(c.id)
    trials: list[Trial] = make_trials(by_spk, targets, nontargets, seed)
    write_trials(trials, out / "trials.txt")
    return {"train": out / "train.jsonl.gz", "test": out / "test.jsonl.gz", "trials": out / "trials.txt"}


def say(
    speaker: int | str, text: str, seed: int = 0, variant: int = 0, difficulty: float = DEFAULT_DIFFICULTY
) -> np.ndarray:
    """Speak ``text`` (words of unit symbols) in the voice of a corpus speaker (index ``g`` or id
    ``syn00003``) of population ``seed``; ``variant`` picks the recording conditions. -> (S,) 16 kHz."""
    g = int(speaker[3:]) if isinstance(speaker, str) and speaker.startswith("syn") else int(speaker)
    rng = np.random.default_rng((seed, 2, g, variant))
    return synthesize(speaker_traits(seed, g, difficulty), text, rng, difficulty=difficulty)
