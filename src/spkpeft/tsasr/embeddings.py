"""Where the target speaker's embedding comes from: an :class:`EmbeddingSource`.

- :class:`FileEmbeddings`: precomputed vectors keyed by utterance id, from a ``.npz`` or a ``.safetensors``
  file (one array per id). ``.npy`` is refused: it can hold a table only as a pickled dict, and loading a
  pickle can run code.
- :class:`CallableEmbeddings`: any ``embed(wav (S,), sr) -> (E,)`` function, cached per utterance id;
  ``SpeakerVerifier.embed`` plugs in here.
- :class:`MelStatsEmbedder`: a transparent, training-free speaker-dependent embedding (per-band mean and
  standard deviation of the log-mel spectrogram, level-normalised, L2-normalised). It is NOT a trained
  speaker model; it stands in for one in the synthetic proof, where voices differ in pitch and formants.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from spkpeft.data.config import SAMPLE_RATE

log = logging.getLogger(__name__)

AudioLoader = Callable[[], tuple[np.ndarray, int]]


@runtime_checkable
class EmbeddingSource(Protocol):
    """``get(utt_id, load_audio)`` -> (E,) float32; ``load_audio()`` -> (wav (S,), sr), called only by
    sources that compute from audio. ``dim`` is E (None until known for callables)."""

    @property
    def dim(self) -> int | None: ...

    def get(self, utt_id: str, load_audio: AudioLoader) -> np.ndarray: ...


class FileEmbeddings:
    """Vectors keyed by utterance id from ``.npz`` or ``.safetensors`` (never a pickle)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"speaker embedding file not found: {self.path}")
        self.table = _read_table(self.path)
        if not self.table:
            raise ValueError(f"{self.path} holds no embeddings")
        dims = {v.shape for v in self.table.values()}
        if len(dims) != 1 or len(next(iter(dims))) != 1:
            raise ValueError(
                f"{self.path}: embeddings must all be 1-D of one size, found shapes {sorted(dims)}"
            )
        self._dim = next(iter(dims))[0]

    @property
    def dim(self) -> int:
        return self._dim

    def get(self, utt_id: str, load_audio: AudioLoader | None = None) -> np.ndarray:
        if utt_id not in self.table:
            raise KeyError(f"no speaker embedding for utterance {utt_id!r} in {self.path}")
        return self.table[utt_id]


def _read_table(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        return {k: v.astype(np.float32) for k, v in load_file(str(path)).items()}
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k].astype(np.float32) for k in z.files}
        except ValueError as e:  # an object (pickled) member
            raise ValueError(f"{path}: {e}; embedding files must hold plain float arrays") from None
    raise ValueError(f"{path}: unsupported embedding file type {path.suffix!r}; {_FORMATS}")


_FORMATS = (
    "use .npz (np.savez(path, **{utt_id: vector})) or .safetensors, one array per utterance id (.npy is "
    "not read: it holds a table only as a pickled dict, and loading a pickle can run code)"
)


def save_embeddings(table: dict[str, np.ndarray], path: str | Path) -> None:
    """Write ``table`` in the format :class:`FileEmbeddings` reads (by suffix), atomically
    (:func:`spkpeft.atomic.replace_file`: an interrupted write leaves the earlier file)."""
    from spkpeft.atomic import replace_file

    path = Path(path)
    if path.suffix not in (".safetensors", ".npz"):
        raise ValueError(f"{path}: unsupported embedding file type {path.suffix!r}; {_FORMATS}")

    def write(tmp: Path) -> None:
        if path.suffix == ".safetensors":
            from safetensors.numpy import save_file

            save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in table.items()}, str(tmp))
        else:
            np.savez(tmp, **table)

    replace_file(path, write, suffix=path.suffix)


class CallableEmbeddings:
    """Wraps ``embed(wav (S,), sr) -> (E,)`` (e.g. ``SpeakerVerifier.embed``), caching by utterance id."""

    def __init__(self, embed: Callable[[np.ndarray, int], np.ndarray], name: str = "") -> None:
        self.embed, self.name = embed, name or getattr(embed, "__qualname__", "callable")
        self._cache: dict[str, np.ndarray] = {}
        self._dim: int | None = None

    @property
    def dim(self) -> int | None:
        return self._dim

    def get(self, utt_id: str, load_audio: AudioLoader) -> np.ndarray:
        if utt_id not in self._cache:
            wav, sr = load_audio()
            vec = np.asarray(_to_numpy(self.embed(wav, sr)), dtype=np.float32).reshape(-1)
            if self._dim is not None and vec.shape[0] != self._dim:
                raise ValueError(
                    f"{self.name} returned {vec.shape[0]} dims for {utt_id!r}, earlier {self._dim}"
                )
            self._dim = vec.shape[0]
            self._cache[utt_id] = vec
        return self._cache[utt_id]


def _to_numpy(x: object) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().float().numpy()  # type: ignore[union-attr]
    return np.asarray(x)


class MelStatsEmbedder:
    """``embed(wav, sr) -> (n_mels + pitch_bins,)``: a training-free, speaker-dependent vector made of

    - the spectral envelope: mean log-mel of voiced frames (within 30 dB of the loudest), centred so that
      loudness cancels, scaled to norm 1;
    - the pitch distribution: per voiced frame, f0 from the autocorrelation peak (60-400 Hz), softly
      binned on a log-frequency grid, averaged, scaled to norm ``pitch_weight``;

    the whole vector L2-normalised. It is NOT a trained speaker model; it stands in for one where voices
    differ in pitch and formants (the synthetic proof) until a speaker model is plugged in.
    """

    def __init__(
        self, n_mels: int = 40, sr: int = SAMPLE_RATE, pitch_bins: int = 24, pitch_weight: float = 1.0
    ) -> None:
        from transformers.audio_utils import mel_filter_bank

        self.n_mels, self.sr, self.pitch_weight = n_mels, sr, pitch_weight
        self.filters = mel_filter_bank(
            num_frequency_bins=513, num_mel_filters=n_mels, min_frequency=50.0, max_frequency=sr / 2,
            sampling_rate=sr, norm="slaney", mel_scale="slaney",
        )  # fmt: skip
        self.centres = np.linspace(np.log(60.0), np.log(400.0), pitch_bins)
        win = np.hanning(1024)
        self.window = win
        self.win_acf = np.fft.irfft(np.abs(np.fft.rfft(win, 2048)) ** 2)[:1024]

    @property
    def dim(self) -> int:
        return self.n_mels + len(self.centres)

    def __call__(self, wav: np.ndarray, sr: int) -> np.ndarray:
        if sr != self.sr:
            raise ValueError(f"MelStatsEmbedder expects {self.sr} Hz audio, got {sr}")
        wav = np.asarray(wav, dtype=np.float32)
        if wav.size < 1024:
            raise ValueError(f"audio of {wav.size} samples is too short to embed (need >= 1024)")
        frames = np.lib.stride_tricks.sliding_window_view(wav, 1024)[::160] * self.window
        spec = np.fft.rfft(frames, 2048, axis=-1)
        power = np.abs(spec) ** 2
        logmel = np.log10(power[:, ::2] @ self.filters + 1e-10)  # (T, n_mels)
        energy = logmel.max(axis=1)
        voiced = energy > energy.max() - 3.0
        env = logmel[voiced].mean(0)
        env = env - env.mean()
        acf = np.fft.irfft(power[voiced], axis=-1)[:, :1024] / np.maximum(self.win_acf, 1e-3)
        lo, hi = int(self.sr / 400), int(self.sr / 60)
        f0 = self.sr / (lo + acf[:, lo:hi].argmax(axis=1))
        hist = np.exp(-0.5 * ((np.log(f0)[:, None] - self.centres[None]) / 0.06) ** 2).mean(0)
        vec = np.concatenate([env / (np.linalg.norm(env) + 1e-8),
                              self.pitch_weight * hist / (np.linalg.norm(hist) + 1e-8)])  # fmt: skip
        return (vec / np.linalg.norm(vec)).astype(np.float32)
