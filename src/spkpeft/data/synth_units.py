"""The unit inventory of the synthetic speaker corpus: single-letter phone-like units.

A transcript (the supervision ``text``) is lowercase words separated by spaces; each word is a
sequence of unit symbols, and every space is a pause in the audio. Formant targets are for a reference
adult vocal tract (scale 1.0); a speaker's vocal-tract length scales them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Unit:
    """One phone-like unit.

    kind: vowel | nasal | approximant | fricative | stop.
    formants: F1-F4 targets in Hz (for voiced kinds; stops/fricatives borrow their neighbours').
    noise_hz: (centre, bandwidth) of the frication / burst noise; None for voiced kinds.
    voiced / noise: source amplitudes (0..1) of the glottal pulse train and of the noise.
    dur_ms: (min, max) duration at speaking rate 1.
    """

    symbol: str
    kind: str
    formants: tuple[float, float, float, float]
    noise_hz: tuple[float, float] | None
    voiced: float
    noise: float
    dur_ms: tuple[float, float]


_F_NEUTRAL = (500.0, 1500.0, 2500.0, 3500.0)

UNITS: dict[str, Unit] = {
    u.symbol: u
    for u in (
        Unit("a", "vowel", (730, 1090, 2440, 3400), None, 1.0, 0.0, (90, 170)),
        Unit("e", "vowel", (530, 1840, 2480, 3500), None, 1.0, 0.0, (80, 150)),
        Unit("i", "vowel", (280, 2250, 2950, 3600), None, 0.9, 0.0, (70, 140)),
        Unit("o", "vowel", (570, 860, 2410, 3400), None, 1.0, 0.0, (90, 160)),
        Unit("u", "vowel", (310, 870, 2240, 3300), None, 0.9, 0.0, (70, 140)),
        Unit("m", "nasal", (260, 1100, 2200, 3300), None, 0.35, 0.0, (50, 90)),
        Unit("n", "nasal", (260, 1600, 2600, 3400), None, 0.35, 0.0, (45, 80)),
        Unit("l", "approximant", (360, 1150, 2800, 3500), None, 0.6, 0.0, (45, 80)),
        Unit("s", "fricative", _F_NEUTRAL, (5800.0, 1800.0), 0.0, 0.35, (80, 140)),
        Unit("f", "fricative", _F_NEUTRAL, (4000.0, 4500.0), 0.0, 0.12, (70, 120)),
        Unit("h", "fricative", _F_NEUTRAL, (1500.0, 3000.0), 0.0, 0.15, (50, 90)),
        Unit("p", "stop", _F_NEUTRAL, (900.0, 900.0), 0.0, 0.5, (55, 85)),
        Unit("t", "stop", _F_NEUTRAL, (4200.0, 2500.0), 0.0, 0.5, (55, 85)),
        Unit("k", "stop", _F_NEUTRAL, (2100.0, 1200.0), 0.0, 0.5, (60, 90)),
    )
}
"""Symbol -> :class:`Unit`. Vowels a e i o u; nasals m n; approximant l; fricatives s f h; stops p t k."""

INVENTORY: tuple[str, ...] = tuple(UNITS)
"""The unit symbols in a fixed order: ``('a','e','i','o','u','m','n','l','s','f','h','p','t','k')``."""

VOWELS = tuple(s for s, u in UNITS.items() if u.kind == "vowel")
CONSONANTS = tuple(s for s, u in UNITS.items() if u.kind != "vowel")


def parse_text(text: str) -> list[str]:
    """``"ka sit"`` -> ``["ka", "sit"]``; unknown symbols raise ValueError listing the inventory."""
    words = text.lower().split()
    if not words:
        raise ValueError("empty transcript: give words made of unit symbols, e.g. 'ka sit'")
    for w in words:
        bad = sorted(set(w) - set(INVENTORY))
        if bad:
            raise ValueError(f"word {w!r} has symbols {bad} outside the inventory {''.join(INVENTORY)}")
    return words


def random_word(rng: np.random.Generator, max_syllables: int = 3) -> str:
    """1..max_syllables syllables of shape (C)V(C)."""
    out = []
    for _ in range(int(rng.integers(1, max_syllables + 1))):
        if rng.random() < 0.8:
            out.append(CONSONANTS[int(rng.integers(len(CONSONANTS)))])
        out.append(VOWELS[int(rng.integers(len(VOWELS)))])
        if rng.random() < 0.25:
            out.append(CONSONANTS[int(rng.integers(len(CONSONANTS)))])
    return "".join(out)


def random_text(rng: np.random.Generator, seconds: float, rate: float = 1.0) -> str:
    """Words whose expected spoken length (at ``rate``) is about ``seconds``."""
    words: list[str] = []
    total = 0.0
    while total < seconds or not words:
        w = random_word(rng)
        words.append(w)
        total += (sum(np.mean(UNITS[c].dur_ms) for c in w) / 1000.0 + 0.17) / rate
    return " ".join(words)
