"""On-the-fly augmentation of 16 kHz crops: additive MUSAN noise / music / babble, RIR reverberation.

Everything draws from a caller-supplied ``numpy.random.Generator`` so a crop is a pure function of
(seed, epoch, index). SNR ranges and babble sizes follow the Kaldi/WeSpeaker VoxCeleb recipes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spkpeft.data.config import SAMPLE_RATE, DataConfig
from spkpeft.data.manifest import Utterance

CATEGORIES = ("noise", "music", "speech")


def fit_length(x: np.ndarray, n: int, rng: np.random.Generator | None = None, policy: str = "repeat"):
    """(S,) -> (n,): tile (``repeat``) or zero-pad (``pad``) when short; a random window when long."""
    if len(x) >= n:
        off = int(rng.integers(0, len(x) - n + 1)) if rng is not None and len(x) > n else 0
        return x[off : off + n]
    if policy == "repeat":
        return np.tile(x, -(-n // len(x)))[:n]
    return np.pad(x, (0, n - len(x)))


def category_of(utt: Utterance) -> str:
    """noise | music | speech, from the manifest's ``category`` or else the path (MUSAN layout)."""
    if utt.category in CATEGORIES:
        return utt.category
    low = f"{utt.path} {utt.id}".lower()
    for c in ("music", "speech"):
        if c in low:
            return c
    return "noise"


def power(x: np.ndarray) -> float:
    return float(np.mean(x.astype(np.float64) ** 2)) + 1e-10


class NoiseAugmenter:
    """Adds one of noise / music / babble (3-7 summed speech files) at a random SNR."""

    def __init__(self, utterances: Sequence[Utterance], cfg: DataConfig) -> None:
        self.bank: dict[str, list[Utterance]] = {c: [] for c in CATEGORIES}
        for u in utterances:
            self.bank[category_of(u)].append(u)
        if not utterances:
            raise ValueError(f"noise manifest {cfg.noise_manifest!r} has no cuts")
        self.kinds = [
            k for k, c in (("noise", "noise"), ("music", "music"), ("babble", "speech")) if self.bank[c]
        ]
        self.snr = {
            "noise": cfg.noise_snr_noise,
            "music": cfg.noise_snr_music,
            "babble": cfg.noise_snr_babble,
        }
        self.babble = cfg.babble_speakers

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """x (S,) -> x + noise (S,) at an SNR drawn for the chosen kind."""
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        if kind == "babble":
            n = int(rng.integers(self.babble[0], self.babble[1] + 1))
            noise = sum(self._segment("speech", len(x), rng) for _ in range(n))
        else:
            noise = self._segment(kind, len(x), rng)
        snr = rng.uniform(*self.snr[kind])
        scale = np.sqrt(power(x) / (power(noise) * 10 ** (snr / 10)))
        return np.clip(x + scale * noise, -1.0, 1.0).astype(np.float32)

    def _segment(self, category: str, n: int, rng: np.random.Generator) -> np.ndarray:
        pool = self.bank[category]
        u = pool[int(rng.integers(len(pool)))]
        need = n / SAMPLE_RATE
        offset = rng.uniform(0, u.duration - need) if u.duration > need else 0.0
        return fit_length(u.load(offset, min(need, u.duration)), n)


class RirAugmenter:
    """Convolves with a random room impulse response (energy-normalised, aligned on its peak)."""

    def __init__(self, utterances: Sequence[Utterance], cfg: DataConfig, max_seconds: float = 1.0) -> None:
        if not utterances:
            raise ValueError(f"RIR manifest {cfg.rir_manifest!r} has no cuts")
        self.rirs = list(utterances)
        self.max_seconds = max_seconds

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """x (S,) -> reverberant x (S,) with the same RMS."""
        u = self.rirs[int(rng.integers(len(self.rirs)))]
        return reverberate(x, u.load(0.0, min(u.duration, self.max_seconds)))


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """x (S,), rir (R,) -> (S,): FFT convolution, delay of the direct path removed, RMS kept."""
    peak = int(np.argmax(np.abs(rir)))
    rir = rir[peak:] / (np.sqrt(np.sum(rir.astype(np.float64) ** 2)) + 1e-10)
    n = len(x) + len(rir) - 1
    size = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(rir, size), size)[: len(x)]
    y *= np.sqrt(power(x) / power(y))
    return np.clip(y, -1.0, 1.0).astype(np.float32)
