"""Synthetic "unit speech" with transcripts, so target-speaker ASR runs end to end without downloads.

Each unit symbol (a letter) is a voiced sound with its own formant pattern; each speaker has a pitch
(f0), a vocal-tract scale (formants x alpha) and a spectral tilt, so voices are distinguishable by the
features a speaker embedding uses and units are recognisable across voices. A word is 1-``max_units``
units; an utterance is ``words`` words separated by short pauses; its transcript is the space-separated
words (``"ab dce"``), as the corpus of ``spkpeft data synth`` writes them.

The output is a lhotse CutSet (one cut per utterance, one supervision with ``speaker`` and ``text``) and
the 16 kHz WAV files it points to.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import spkpeft.data  # noqa: F401  (lhotse import shim)
from spkpeft.data.config import SAMPLE_RATE as SR

log = logging.getLogger(__name__)


# unit -> (F1, F2, F3) in Hz for a reference vocal tract (alpha = 1)
UNITS: dict[str, tuple[float, float, float]] = {
    "a": (750, 1250, 2600),
    "e": (480, 2000, 2700),
    "i": (300, 2400, 3100),
    "o": (500, 900, 2500),
    "u": (330, 750, 2300),
    "m": (250, 1100, 2200),
    "r": (450, 1350, 1700),
    "s": (900, 3800, 5200),
}


@dataclass(frozen=True)
class Voice:
    f0: float
    alpha: float
    tilt: float  # dB per octave above 500 Hz

    @staticmethod
    def sample(rng: np.random.Generator) -> Voice:
        return Voice(
            f0=float(np.exp(rng.uniform(np.log(85), np.log(290)))),
            alpha=float(rng.uniform(0.85, 1.2)),
            tilt=float(rng.uniform(-9, -3)),
        )


def synth_unit(unit: str, voice: Voice, dur: float, rng: np.random.Generator) -> np.ndarray:
    """(round(dur * SR),) float32: a harmonic complex shaped by the unit's formants and the voice."""
    n = int(round(dur * SR))
    t = np.arange(n) / SR
    f0 = voice.f0 * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(2, 5) * t))  # slow vibrato
    phase = 2 * np.pi * np.cumsum(f0) / SR
    k = np.arange(1, int(7000 // voice.f0) + 1)
    freqs = k * voice.f0
    amp = np.zeros_like(freqs)
    for formant in UNITS[unit]:
        fc = formant * voice.alpha
        amp += np.exp(-0.5 * ((freqs - fc) / (60 + 0.06 * fc)) ** 2)
    amp *= 10 ** (voice.tilt * np.log2(np.maximum(freqs, 500) / 500) / 20)
    wav = (amp[:, None] * np.sin(k[:, None] * phase[None, :] + rng.uniform(0, 6.3, (len(k), 1)))).sum(0)
    ramp = min(n // 4, int(0.015 * SR))
    env = np.ones(n)
    env[:ramp] = np.linspace(0, 1, ramp)
    env[n - ramp :] = np.linspace(1, 0, ramp)
    return (wav * env / (np.abs(wav).max() + 1e-8)).astype(np.float32)


def synth_utterance(
    text: str, voice: Voice, rng: np.random.Generator, unit_dur: tuple[float, float] = (0.09, 0.13)
) -> np.ndarray:
    """Render ``text`` (space-separated words of unit letters) in ``voice``; (S,) float32 at 16 kHz."""
    pause = np.zeros(int(0.06 * SR), dtype=np.float32)
    parts = [pause]
    for word in text.split():
        for unit in word:
            if unit not in UNITS:
                raise ValueError(f"unit {unit!r} in {text!r} is unknown; valid units: {''.join(UNITS)}")
            parts.append(synth_unit(unit, voice, rng.uniform(*unit_dur), rng))
        parts.append(pause)
    return 0.5 * np.concatenate(parts)


def random_text(rng: np.random.Generator, words: tuple[int, int], max_units: int) -> str:
    units = list(UNITS)
    n = rng.integers(words[0], words[1] + 1)
    return " ".join("".join(rng.choice(units, rng.integers(1, max_units + 1))) for _ in range(n))


def make_unit_corpus(
    out_dir: str | Path,
    speakers: int,
    utterances: int,
    seed: int = 0,
    words: tuple[int, int] = (2, 3),
    max_units: int = 2,
    prefix: str = "spk",
):
    """Write ``speakers x utterances`` WAVs and ``cuts.jsonl.gz`` under ``out_dir``; return the CutSet."""
    import soundfile as sf
    from lhotse import CutSet, Recording, SupervisionSegment

    out = Path(out_dir)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cuts = []
    for s in range(speakers):
        spk = f"{prefix}{s:03d}"
        voice = Voice.sample(rng)
        for u in range(utterances):
            uid = f"{spk}-{u:03d}"
            text = random_text(rng, words, max_units)
            path = out / "wav" / f"{uid}.wav"
            sf.write(path, synth_utterance(text, voice, rng), SR, subtype="PCM_16")
            rec = Recording.from_file(path, recording_id=uid)
            sup = SupervisionSegment(uid, uid, 0.0, rec.duration, speaker=spk, text=text, language="en")
            cuts.append(_cut(rec, sup))
    cs = CutSet.from_cuts(cuts)
    cs.to_file(out / "cuts.jsonl.gz")
    log.info("wrote %d synthetic utterances of %d speakers to %s", len(cs), speakers, out)
    return cs


def _cut(rec, sup):  # noqa: ANN001, ANN202
    from lhotse import MonoCut

    return MonoCut(id=rec.id, start=0.0, duration=rec.duration, channel=0, recording=rec, supervisions=[sup])
