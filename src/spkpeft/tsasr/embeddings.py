"""Where the target speaker's embedding comes from: an :class:`EmbeddingSource`.

- :class:`FileEmbeddings`: precomputed vectors keyed by utterance id, from a ``.npy`` file holding a dict
  (``np.save(path, {"utt": vec})``), a ``.npz`` or a ``.safetensors`` file (one tensor per id).
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
    """Vectors keyed by utterance id from ``.npy`` (pickled dict), ``.npz`` or ``.safetensors``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"speaker embedding file not found: {self.path}")
        self.table = _read_table(self.path)
        if not self.table:
            raise ValueError(f"{self.path} holds no embeddings")
        dims = {v.shape for v in self.table.values()}
        if len(dims) != 1 or len(next(iter(dims))) != 1:
            raise ValueError(f"{self.path}: embeddings must all be 1-D of one size, found shapes {sorted(dims)}")
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
        with np.load(path) as z:
            return {k: z[k].astype(np.float32) for k in z.files}
    if path.suffix == ".npy":
        obj = np.load(path, allow_pickle=True)
        if obj.dtype != object or not isinstance(obj.item(), dict):
            raise ValueError(f"{path}: a .npy embedding file must hold a dict utt_id -> vector")
        return {str(k): np.asarray(v, dtype=np.float32) for k, v in obj.item().items()}
    raise ValueError(f"{path}: unsupported embedding file type {path.suffix!r}; use .npy, .npz or .safetensors")


def save_embeddings(table: dict[str, np.ndarray], path: str | Path) -> None:
    """Write ``table`` in the format :class:`FileEmbeddings` reads (by suffix)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in table.items()}, str(path))
    elif path.suffix == ".npz":
        np.savez(path, **table)
    elif path.suffix == ".npy":
        np.save(path, np.array(dict(table), dtype=object), allow_pickle=True)
    else:
        raise ValueError(f"{path}: unsupported embedding file type; use .npy, .npz or .safetensors")


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
                raise ValueError(f"{self.name} returned {vec.shape[0]} dims for {utt_id!r}, earlier {self._dim}")
            self._dim = vec.shape[0]
            self._cache[utt_id] = vec
        return self._cache[utt_id]


def _to_numpy(x: object) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().float().numpy()  # type: ignore[union-attr]
    return np.asarray(x)


class MelStatsEmbedder:
    """``embed(wav, sr) -> (2 * n_mels,)``: mean and std over time of the log-mel spectrogram of voiced
    frames (energy within 30 dB of the loudest), the means centred on their average (loudness removed),
    the whole vector L2-normalised. Captures pitch harmonics, formants and spectral tilt; training-free."""

    def __init__(self, n_mels: int = 40, sr: int = 16000) -> None:
        from transformers.audio_utils import mel_filter_bank

        self.n_mels, self.sr = n_mels, sr
        self.filters = mel_filter_bank(
            num_frequency_bins=257, num_mel_filters=n_mels, min_frequency=50.0, max_frequency=sr / 2,
            sampling_rate=sr, norm="slaney", mel_scale="slaney",
        )  # fmt: skip

    @property
    def dim(self) -> int:
        return 2 * self.n_mels

    def __call__(self, wav: np.ndarray, sr: int) -> np.ndarray:
        if sr != self.sr:
            raise ValueError(f"MelStatsEmbedder expects {self.sr} Hz audio, got {sr}")
        wav = np.asarray(wav, dtype=np.float32)
        if wav.size < 512:
            raise ValueError(f"audio of {wav.size} samples is too short to embed (need >= 512)")
        frames = np.lib.stride_tricks.sliding_window_view(wav, 512)[::160] * np.hanning(512)
        power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
        logmel = np.log10(power @ self.filters + 1e-10)  # (T, n_mels)
        energy = logmel.max(axis=1)
        voiced = logmel[energy > energy.max() - 3.0]
        mean = voiced.mean(0)
        vec = np.concatenate([mean - mean.mean(), voiced.std(0)])
        return (vec / (np.linalg.norm(vec) + 1e-8)).astype(np.float32)
