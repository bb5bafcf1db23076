"""Procedural voices: a source-filter synthesiser with persistent speaker traits.

A speaker (:class:`SpeakerTraits`) has a fundamental frequency and intonation range, a vocal-tract
length (formant scaling) with small per-formant idiosyncrasies, formant bandwidths, source spectral
tilt, breathiness, jitter, shimmer, glottal open quotient and speaking rate. An utterance renders a
unit sequence (:mod:`spkpeft.data.synth_units`): a Rosenberg glottal pulse train and a noise source
are shaped frame by frame (8 ms hop) in the STFT domain by a cascade of formant resonances (voiced
and aspiration), nasal anti-resonances, and frication band-passes; then a per-utterance channel (gain,
EQ tilt and peaks) and coloured background noise at a random SNR are applied.

``difficulty`` (0..1) narrows the spread of traits between speakers and widens the per-utterance
variation (pitch and rate drift, channel EQ, SNR): higher is harder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from spkpeft.data.config import SAMPLE_RATE
from spkpeft.data.synth_units import INVENTORY, UNITS, parse_text

HOP = 128  # 8 ms frames
NFFT = 512
_UNIT_INDEX = {u: i for i, u in enumerate(INVENTORY)}
_BANDWIDTHS = np.array([80.0, 100.0, 150.0, 250.0])
_NASAL_ZERO = {"m": 1000.0, "n": 1800.0}
_WINDOW = torch.hann_window(NFFT)
DEFAULT_DIFFICULTY = 0.3
"""Default ``difficulty``: mean-MFCC + cosine EER about 27 %, LDA on mean MFCC about 13 % (docs/data.md)."""


@dataclass(frozen=True)
class SpeakerTraits:
    f0_hz: float  # mean fundamental frequency
    f0_range_st: float  # intonation range (semitones)
    vtl_scale: float  # formant scale (1 = reference tract; > 1 = shorter tract, higher formants)
    formant_offsets: tuple[float, float, float, float]  # per-formant multiplicative idiosyncrasy
    bandwidth_scale: float
    tilt_db_oct: float  # extra source spectral tilt
    breathiness: float  # aspiration noise relative to voicing
    jitter: float  # relative frame-to-frame F0 perturbation
    shimmer: float  # relative frame-to-frame amplitude perturbation
    rate: float  # speaking rate (> 1 faster)
    open_quotient: float  # glottal open quotient (0.4 pressed .. 0.8 breathy)


@dataclass(frozen=True)
class Conditions:
    """Per-utterance variation: the same speaker on another day, through another channel."""

    f0_shift_st: float
    rate: float
    vtl: float
    gain_db: float
    eq_tilt_db_oct: float
    eq_peaks: tuple[tuple[float, float], ...]  # (centre Hz, gain dB), half-octave wide
    snr_db: float
    noise_color: float  # 0 white .. 2 brown


def sample_speaker(rng: np.random.Generator, difficulty: float = DEFAULT_DIFFICULTY) -> SpeakerTraits:
    """Draw persistent traits; ``difficulty`` narrows their spread across speakers."""
    s = 2.0 - 1.5 * difficulty  # spread: 2 (easy) .. 0.5 (hard)
    female = rng.random() < 0.5
    f0 = (210.0 if female else 120.0) * math.exp(rng.normal(0, 0.13 * s))
    vtl = (1.16 if female else 1.0) * (1 + rng.normal(0, 0.05 * s))
    return SpeakerTraits(
        f0_hz=float(f0),
        f0_range_st=float(rng.uniform(1.0, 1.0 + 3.0 * s)),
        vtl_scale=float(vtl),
        formant_offsets=tuple(float(v) for v in 1 + rng.normal(0, 0.04 * s, 4)),  # type: ignore[arg-type]
        bandwidth_scale=float(math.exp(rng.normal(0, 0.2 * s))),
        tilt_db_oct=float(rng.normal(-1.0, 2.0 * s)),
        breathiness=float(rng.uniform(0.02, 0.02 + 0.25 * s)),
        jitter=float(rng.uniform(0.003, 0.003 + 0.015 * s)),
        shimmer=float(rng.uniform(0.02, 0.02 + 0.08 * s)),
        rate=float(math.exp(rng.normal(0, 0.1 * s))),
        open_quotient=float(rng.uniform(0.45, 0.75)),
    )


def sample_conditions(rng: np.random.Generator, difficulty: float = DEFAULT_DIFFICULTY) -> Conditions:
    """Draw per-utterance variation; ``difficulty`` widens it."""
    d = difficulty
    peaks = tuple(
        (float(math.exp(rng.uniform(math.log(200), math.log(6000)))), float(rng.normal(0, 4 * d)))
        for _ in range(2)
    )
    return Conditions(
        f0_shift_st=float(rng.normal(0, 1.5 * d)),
        rate=float(math.exp(rng.normal(0, 0.08 * d))),
        vtl=float(1 + rng.normal(0, 0.01 * d)),
        gain_db=float(rng.uniform(-6, 0)),
        eq_tilt_db_oct=float(rng.normal(0, 2.5 * d)),
        eq_peaks=peaks,
        snr_db=float(rng.uniform(35 - 30 * d, 45 - 25 * d)),
        noise_color=float(rng.uniform(1 - d, 1 + d)),
    )


def synthesize(
    traits: SpeakerTraits,
    text: str,
    rng: np.random.Generator,
    conditions: Conditions | None = None,
    difficulty: float = DEFAULT_DIFFICULTY,
) -> np.ndarray:
    """Render ``text`` (words of unit symbols, spaces = pauses) for a speaker -> float32 (S,) at 16 kHz.

    ``conditions`` default to a fresh draw from ``rng`` at ``difficulty``.
    """
    return synthesize_aligned(traits, text, rng, conditions, difficulty)[0]


def synthesize_aligned(
    traits: SpeakerTraits,
    text: str,
    rng: np.random.Generator,
    conditions: Conditions | None = None,
    difficulty: float = DEFAULT_DIFFICULTY,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`synthesize` plus its frame alignment: (S,) float32 audio and (T,) int labels, one per
    ``HOP`` samples (8 ms): 0 for silence, else 1 + the unit's index in ``INVENTORY`` (a stop's closure,
    burst and aspiration all carry the stop's label). Draws exactly the same random numbers as
    :func:`synthesize`, so the audio is identical."""
    words = parse_text(text)
    cond = conditions or sample_conditions(rng, difficulty)
    tracks = _tracks(words, traits, cond, rng)
    n = tracks["f0"].shape[0] * HOP
    voiced = _glottal_source(tracks["f0"], traits, rng, n)
    spec_v = _stft(voiced)
    spec_n = _stft(rng.standard_normal(n).astype(np.float32))
    freqs = np.fft.rfftfreq(NFFT, 1 / SAMPLE_RATE)[None, :].astype(np.float32)  # (1, K)
    env = _formant_env(tracks["formants"], traits.bandwidth_scale, freqs) * _nasal_zero(tracks["zero"], freqs)
    src_tilt = (10 ** (traits.tilt_db_oct * np.log2(np.maximum(freqs, 50) / 500) / 20)).astype(np.float32)
    frames = spec_v.shape[1]  # T + 1 (centred STFT): hold the last frame's parameters
    av, an, asp, nc, nb = (
        _hold(tracks[k], frames)[:, None].astype(np.float32) for k in ("av", "an", "asp", "nc", "nb")
    )
    fric = _bandpass(nc, nb, freqs)
    env = _hold(env, frames)
    voiced_gain = av * env * src_tilt
    noise_gain = (asp + traits.breathiness * av) * env * 0.02 + an * fric * 0.4
    spec = spec_v * torch.from_numpy(np.ascontiguousarray(voiced_gain.T, dtype=np.float32))
    spec += spec_n * torch.from_numpy(np.ascontiguousarray(noise_gain.T, dtype=np.float32))
    spec *= torch.from_numpy(_channel(cond, freqs).T.astype(np.float32))
    wav = _istft(spec, n)
    return _finish(wav, cond, rng), tracks["unit"]


def _tracks(words: list[str], traits: SpeakerTraits, cond: Conditions, rng: np.random.Generator) -> dict:
    """Frame-level parameter tracks (T frames of 8 ms): f0, formants (T,4), voiced/noise amps, ..."""
    rate = traits.rate * cond.rate
    segs: list[tuple[str | None, int]] = [(None, _frames(rng.uniform(60, 120) / rate))]
    for w in words:
        for c in w:
            segs += _unit_segments(c, rate, rng)
        segs.append((None, _frames(rng.uniform(100, 250) / rate)))
    scale = traits.vtl_scale * cond.vtl * np.array(traits.formant_offsets)
    T = sum(n for _, n in segs)
    tr = {k: np.zeros(T) for k in ("av", "an", "asp", "nc", "nb", "zero")}
    tr["formants"] = np.zeros((T, 4))
    tr["unit"] = np.zeros(T, dtype=np.int64)
    voiced_ids = [i for i, (c, _) in enumerate(segs) if c and c[0] in UNITS and UNITS[c[0]].voiced > 0]
    t = 0
    for i, (c, n) in enumerate(segs):
        sl = slice(t, t + n)
        t += n
        near = min(voiced_ids, key=lambda j: abs(j - i)) if voiced_ids else None
        ref = UNITS[segs[near][0][0]] if near is not None else UNITS["a"]  # type: ignore[index]
        if c is None:
            tr["formants"][sl] = np.array(ref.formants) * scale
            continue
        u, part = UNITS[c[0]], c[1:]
        tr["unit"][sl] = 1 + _UNIT_INDEX[c[0]]
        tr["formants"][sl] = np.array(u.formants if u.voiced > 0 else ref.formants) * scale
        if u.kind == "stop":
            if part == "b":  # burst
                tr["an"][sl], tr["nb"][sl] = 1.0, u.noise_hz[1]
                tr["nc"][sl] = min(u.noise_hz[0] * traits.vtl_scale, 7200.0)
            elif part == "a":  # aspiration
                tr["asp"][sl] = 0.6
            continue
        tr["av"][sl] = u.voiced
        if u.symbol == "h":
            tr["asp"][sl] = 1.0
        elif u.noise_hz is not None:
            tr["an"][sl] = u.noise
            tr["nc"][sl] = min(u.noise_hz[0] * traits.vtl_scale, 7200.0)
            tr["nb"][sl] = u.noise_hz[1]
        if u.symbol in _NASAL_ZERO:
            tr["zero"][sl] = _NASAL_ZERO[u.symbol] * traits.vtl_scale
    tr["formants"] = _smooth(tr["formants"], 5)
    for k in ("av", "an", "asp"):
        tr[k] = _smooth(tr[k], 3)
    tr["f0"] = _f0_track(T, words, traits, cond, rng)
    tr["av"] *= np.exp(rng.normal(0, traits.shimmer, T))
    return tr


def _unit_segments(c: str, rate: float, rng: np.random.Generator) -> list[tuple[str, int]]:
    u = UNITS[c]
    dur = rng.uniform(*u.dur_ms) / rate
    if u.kind != "stop":
        return [(c, _frames(dur))]
    return [(c + "c", _frames(dur * 0.55)), (c + "b", 2), (c + "a", _frames(dur * 0.3))]


def _hold(x: np.ndarray, frames: int) -> np.ndarray:
    """Pad (or cut) axis 0 to ``frames`` by repeating the last row."""
    if len(x) >= frames:
        return x[:frames]
    return np.concatenate([x, np.repeat(x[-1:], frames - len(x), axis=0)])


def _frames(ms: float) -> int:
    return max(1, int(round(ms / 1000 * SAMPLE_RATE / HOP)))


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average over frames (axis 0), edges held."""
    k = np.ones(width) / width
    pad = [(width // 2, width - 1 - width // 2)] + [(0, 0)] * (x.ndim - 1)
    xp = np.pad(x, pad, mode="edge")
    if x.ndim == 1:
        return np.convolve(xp, k, mode="valid")
    return np.stack([np.convolve(xp[:, j], k, mode="valid") for j in range(x.shape[1])], axis=1)


def _f0_track(
    T: int, words: list[str], traits: SpeakerTraits, cond: Conditions, rng: np.random.Generator
) -> np.ndarray:
    """(T,) Hz: declination + word accents + slow drift + jitter, around the speaker's mean."""
    pos = np.linspace(0, 1, T)
    st = traits.f0_range_st * (0.6 - 1.2 * pos)  # declination
    for c in rng.uniform(0, 1, size=len(words)):
        st += traits.f0_range_st * rng.uniform(0.2, 1.0) * np.exp(-0.5 * ((pos - c) / 0.04) ** 2)
    st += _smooth(rng.normal(0, 0.6, T), 25)
    f0 = traits.f0_hz * 2 ** ((st + cond.f0_shift_st) / 12)
    return f0 * (1 + rng.normal(0, traits.jitter, T))


def _glottal_source(f0: np.ndarray, traits: SpeakerTraits, rng: np.random.Generator, n: int) -> np.ndarray:
    """Rosenberg glottal-flow derivative (S,) following the frame-level F0 track."""
    f0_s = np.interp(np.arange(n) / HOP, np.arange(len(f0)), f0)
    phase = np.mod(np.cumsum(f0_s / SAMPLE_RATE) + rng.uniform(), 1.0)
    oq = traits.open_quotient
    tp = 0.66 * oq
    flow = np.where(
        phase < tp,
        0.5 * (1 - np.cos(np.pi * phase / tp)),
        np.where(phase < oq, np.cos(0.5 * np.pi * (phase - tp) / (oq - tp)), 0.0),
    )
    return (np.diff(flow, prepend=0.0) * 8.0).astype(np.float32)


def _formant_env(formants: np.ndarray, bw_scale: float, freqs: np.ndarray) -> np.ndarray:
    """(T, 4) formant Hz -> (T, K) cascade resonance magnitude (1 at DC)."""
    env = np.ones((formants.shape[0], freqs.shape[1]), dtype=np.float32)
    for i in range(4):
        fi = np.minimum(formants[:, i : i + 1], 7600.0).astype(np.float32)
        bi = _BANDWIDTHS[i] * bw_scale
        env /= np.sqrt((1 - (freqs / fi) ** 2) ** 2 + (freqs * bi / fi**2) ** 2)
    return env


def _nasal_zero(zero: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """(T,) anti-resonance Hz (0 = none) -> (T, K) magnitude."""
    z = np.where(zero > 0, zero, 1.0)[:, None].astype(np.float32)
    mag = np.sqrt((1 - (freqs / z) ** 2) ** 2 + (freqs * 200.0 / z**2) ** 2)
    return np.where(zero[:, None] > 0, np.minimum(mag, 1.0), 1.0)


def _bandpass(centre: np.ndarray, width: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * ((freqs - centre) / np.maximum(width, 1.0)) ** 2)


def _channel(cond: Conditions, freqs: np.ndarray) -> np.ndarray:
    """(1, K) channel magnitude: EQ tilt around 1 kHz, two half-octave peaks, 60 Hz low cut."""
    lf = np.log2(np.maximum(freqs, 30) / 1000)
    db = cond.eq_tilt_db_oct * lf
    for centre, gain in cond.eq_peaks:
        db = db + gain * np.exp(-0.5 * ((np.log2(np.maximum(freqs, 30) / centre)) / 0.5) ** 2)
    return 10 ** (db / 20) * (1 - np.exp(-((freqs / 60.0) ** 2)))


def _finish(wav: np.ndarray, cond: Conditions, rng: np.random.Generator) -> np.ndarray:
    """Add coloured background noise at the SNR and normalise the peak (channel gain kept)."""
    n = len(wav)
    f = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)
    spec = (rng.standard_normal(len(f)) + 1j * rng.standard_normal(len(f))) * f ** (-cond.noise_color / 2)
    noise = np.fft.irfft(spec, n)
    p_speech = np.mean(wav**2) + 1e-12
    noise *= np.sqrt(p_speech / (np.mean(noise**2) + 1e-12) / 10 ** (cond.snr_db / 10))
    out = wav + noise
    out *= 0.9 * 10 ** (cond.gain_db / 20) / (np.max(np.abs(out)) + 1e-9)
    return out.astype(np.float32)


def _stft(x: np.ndarray) -> torch.Tensor:
    """(S,) -> (K, T) complex STFT (Hann, 512, hop 128)."""
    return torch.stft(torch.from_numpy(x), NFFT, HOP, window=_WINDOW, return_complex=True, center=True)


def _istft(spec: torch.Tensor, n: int) -> np.ndarray:
    return torch.istft(spec, NFFT, HOP, window=_WINDOW, length=n, center=True).numpy().astype(np.float64)
