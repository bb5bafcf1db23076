"""Audio I/O: any format soundfile reads -> mono float32 in [-1, 1] at 16 kHz (soxr resampling).

Errors name the file: a missing, corrupt or empty file, or one with NaN or infinite samples (float
formats can hold them), raises :class:`AudioError`; nothing downstream ever sees non-finite audio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from spkpeft.data.config import SAMPLE_RATE


class AudioError(RuntimeError):
    """An audio file could not be read (missing, corrupt, empty, non-finite samples); names the file."""


def audio_info(path: str | Path) -> tuple[int, int]:
    """(number of frames, sample rate) of a file, without decoding it."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError with varying types
        raise AudioError(f"cannot read audio file {path}: {e}") from None
    return int(info.frames), int(info.samplerate)


def read_audio(
    path: str | Path,
    start: float = 0.0,
    duration: float | None = None,
    sample_rate: int = SAMPLE_RATE,
    speed: float = 1.0,
) -> np.ndarray:
    """Read ``duration`` seconds from ``start`` of ``path`` as mono float32 (S,) at ``sample_rate``.

    ``speed`` != 1 plays the audio faster (> 1) or slower (< 1): ``duration`` then counts seconds of
    the *source* (so the output has about ``duration * sample_rate / speed`` samples). Stereo is mixed
    to mono; values are clipped to [-1, 1]. Raises :class:`AudioError` naming the file (also for NaN or
    infinite samples, which clipping would keep or hide).
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    try:
        with sf.SoundFile(str(path)) as f:
            sr = f.samplerate
            first = int(round(start * sr))
            count = -1 if duration is None else int(round(duration * sr))
            if first:
                f.seek(min(first, f.frames))
            data = f.read(frames=count, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as e:
        raise AudioError(f"cannot read audio file {path}: {e}") from None
    if data.shape[0] == 0:
        raise AudioError(f"audio file is empty (no samples at {start:.2f}s and after): {path}")
    return to_mono_16k(data, sr, sample_rate, speed, where=f"audio file {path}")


def to_mono_16k(
    data: np.ndarray,
    sr: int,
    sample_rate: int = SAMPLE_RATE,
    speed: float = 1.0,
    where: str = "audio array",
) -> np.ndarray:
    """(S,) or (S, C) float -> mono float32 (S',) resampled from ``sr`` to ``sample_rate / speed``.

    Raises :class:`AudioError` (naming ``where``) if a sample is NaN or infinite."""
    bad = ~np.isfinite(data)
    if bad.any():
        first = int(np.argwhere(bad)[0][0])
        raise AudioError(
            f"{where} has {int(bad.sum())} NaN or infinite sample value(s), the first at sample {first} "
            f"({first / sr:.3f} s); fix or drop the recording (spkpeft data check lists them)"
        )
    x = data.mean(axis=1) if data.ndim == 2 else data
    x = np.asarray(x, dtype=np.float32)
    out_rate = sample_rate / speed
    if sr != out_rate:
        x = soxr.resample(x, sr, out_rate, quality="HQ").astype(np.float32, copy=False)
    return np.clip(x, -1.0, 1.0, out=x)


def write_audio(path: str | Path, wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float audio (S,) as 16-bit PCM; the format follows the suffix (.wav, .flac, ...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(wav, -1.0, 1.0), sample_rate, subtype="PCM_16")
