"""Augmentation that needs no corpus: simulated rooms, coloured noise and band-limiting.

For small training sets without MUSAN / RIR corpora at hand (e.g. one recording per speaker), these make
the crops of one recording sound like several sessions:

- :class:`SimulatedRooms`: a bank of room impulse responses from pyroomacoustics' image-source model
  (shoebox rooms of random size, RT60 and source/microphone positions), built once from a seed;
- :func:`add_coloured_noise`: white, pink or brown Gaussian noise at a random SNR;
- :func:`band_limit`: a random low-pass (telephone to wide-band) by resampling down and back with soxr.

All draw from a caller-supplied ``numpy.random.Generator``, so a crop stays a pure function of
(seed, epoch, index). Inputs and outputs are (S,) float32 at :data:`SAMPLE_RATE`.
"""

from __future__ import annotations

import logging

import numpy as np

from spkpeft.data.augment import fit_length, power, reverberate
from spkpeft.data.config import SAMPLE_RATE

log = logging.getLogger(__name__)
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # spectral slope: power ~ 1 / f**slope


class SimulatedRooms:
    """``count`` RIRs (each at most ``max_seconds`` long, peak-normalised) of random shoebox rooms.

    Rooms are 3-10 x 3-8 x 2.5-4 m with RT60 drawn from ``rt60`` (seconds); the image-source order is
    the one Sabine's formula asks for, capped at ``max_order`` to bound the cost (about 10 ms a room).
    """

    def __init__(
        self,
        count: int,
        seed: int,
        rt60: tuple[float, float] = (0.2, 0.7),
        max_seconds: float = 0.5,
        max_order: int = 17,
    ) -> None:
        try:
            import pyroomacoustics as pra
        except ImportError as e:
            raise ImportError(
                "data.sim_rir_prob > 0 needs pyroomacoustics: pip install 'spkpeft[augment]'"
            ) from e
        if count < 1:
            raise ValueError(f"data.sim_rir_rooms must be >= 1, got {count}")
        rng = np.random.default_rng(seed)
        self.rirs: list[np.ndarray] = []
        for _ in range(count):
            dims = rng.uniform([3.0, 3.0, 2.5], [10.0, 8.0, 4.0])
            absorption, order = pra.inverse_sabine(float(rng.uniform(*rt60)), dims)
            room = pra.ShoeBox(
                dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=min(order, max_order)
            )
            room.add_source(rng.uniform(0.5, dims - 0.5))
            room.add_microphone(rng.uniform(0.5, dims - 0.5))
            room.compute_rir()
            rir = np.asarray(room.rir[0][0][: int(max_seconds * SAMPLE_RATE)], dtype=np.float32)
            self.rirs.append(rir / (np.abs(rir).max() + 1e-9))
        log.info("simulated %d room impulse responses (RT60 %.1f-%.1f s)", count, *rt60)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return reverberate(x, self.rirs[int(rng.integers(len(self.rirs)))])


def coloured_noise(n: int, slope: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) unit-power Gaussian noise whose power spectrum falls as 1 / f**slope."""
    white = rng.standard_normal(n)
    if slope == 0.0:
        return white
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    shaped = np.fft.irfft(spec / f ** (slope / 2), n)
    return shaped / np.sqrt(np.mean(shaped**2) + 1e-12)


def add_coloured_noise(x: np.ndarray, snr_db: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """x plus white, pink or brown noise (chosen at random) at an SNR drawn from ``snr_db``."""
    slope = list(NOISE_COLOURS.values())[int(rng.integers(len(NOISE_COLOURS)))]
    snr = float(rng.uniform(*snr_db))
    noise = coloured_noise(len(x), slope, rng) * np.sqrt(power(x) / 10 ** (snr / 10))
    return (x + noise).astype(np.float32)


def band_limit(x: np.ndarray, cutoff_hz: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """x low-passed at a cutoff drawn from ``cutoff_hz`` (resampled to twice the cutoff and back)."""
    import soxr

    rate = 2.0 * float(rng.uniform(*cutoff_hz))
    if rate >= SAMPLE_RATE:
        return x
    y = soxr.resample(soxr.resample(x, SAMPLE_RATE, rate, quality="HQ"), rate, SAMPLE_RATE, quality="HQ")
    return fit_length(y, len(x), policy="pad").astype(np.float32)  # resampling may be off by a sample
