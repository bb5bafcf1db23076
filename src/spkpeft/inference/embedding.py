"""Embeddings from a saved speaker model: of a manifest (cached, batched by length) or of one waveform.

Both paths use :func:`spkpeft.eval.embed.embed_rows`, so an utterance gets the same embedding from
``spkpeft embed`` / ``spkpeft eval`` as from :meth:`spkpeft.SpeakerVerifier.embed`: recordings longer
than ``chunk_seconds`` are cut into windows overlapping by ``overlap_seconds`` whose embeddings are
averaged. The cache key is the model's fingerprint plus the chunk settings, so a cache written by
another model (or other settings) is refused rather than silently reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spkpeft.data.config import SAMPLE_RATE
from spkpeft.dir_lock import exclusive_dir
from spkpeft.eval.embed import embed_rows, extract_embeddings
from spkpeft.eval.table import EmbeddingTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkSettings:
    """Long-recording windows: ``chunk_seconds`` long, overlapping by ``overlap_seconds``."""

    chunk_seconds: float = 20.0
    overlap_seconds: float = 2.0

    def samples(self) -> tuple[int, int]:
        """(window, hop) in samples at 16 kHz."""
        chunk = int(round(self.chunk_seconds * SAMPLE_RATE))
        hop = chunk - int(round(self.overlap_seconds * SAMPLE_RATE))
        if chunk <= 0 or hop <= 0:
            raise ValueError(
                f"need chunk_seconds > overlap_seconds >= 0, got {self.chunk_seconds}, {self.overlap_seconds}"
            )
        return chunk, hop


def model_fingerprint(model_dir: str | Path) -> str:
    """sha256 (16 hex digits) over the files of a saved model (model.json, method, back-end weights)."""
    root = Path(model_dir)
    h = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in {".json", ".safetensors"})
    if not files:
        raise FileNotFoundError(f"{root}: no model files to fingerprint")
    for p in files:
        h.update(p.relative_to(root).as_posix().encode())
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def cache_key(fingerprint: str, chunks: ChunkSettings) -> str:
    return f"{fingerprint}:chunk={chunks.chunk_seconds:g}:overlap={chunks.overlap_seconds:g}"


class LayerStats:
    """Running per-utterance average of ``method.stats()`` and ``backend.layer_weights()`` over forward
    passes (UniPET gate values, LAP's input-dependent layer attention, static softmax weights).

    ``wrap(embed_fn)`` returns an embed function that records after every call. Sums and counts can be
    saved and merged with an earlier run's (cached embeddings are not recomputed, so their statistics
    come from the file).
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.sums: dict[str, np.ndarray] = {}
        self.count = 0

    def wrap(self, embed_fn: Any) -> Any:
        def recorded(wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            out = embed_fn(wav, lengths)
            self.record(int(wav.shape[0]))
            return out

        return recorded

    def record(self, rows: int) -> None:
        values = {k: np.array([v]) for k, v in self.model.method.stats().items()}
        layer_weights = self.model.backend.layer_weights()
        if layer_weights is not None:
            values["layer_weights"] = layer_weights.detach().float().cpu().numpy().reshape(-1)
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + rows * np.asarray(v, dtype=np.float64)
        self.count += rows

    def means(self) -> dict[str, list[float] | float]:
        """name -> average value (a list for per-layer vectors); {} before any forward."""
        if not self.count:
            return {}
        out: dict[str, list[float] | float] = {}
        for k, s in self.sums.items():
            m = s / self.count
            out[k] = float(m[0]) if k != "layer_weights" else [float(x) for x in m]
        return out

    def load_merge(self, path: Path) -> None:
        if path.is_file():
            d = json.loads(path.read_text())
            for k, v in d["sums"].items():
                self.sums[k] = self.sums.get(k, 0.0) + np.asarray(v, dtype=np.float64)
            self.count += int(d["count"])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        sums = {k: np.asarray(v).tolist() for k, v in self.sums.items()}
        path.write_text(json.dumps({"count": self.count, "sums": sums}) + "\n")


def embed_manifest(
    model: Any,
    manifest: str | Path | Sequence[Any],
    cache_dir: str | Path | None,
    key: str,
    chunks: ChunkSettings = ChunkSettings(),
    batch_size: int = 16,
    max_batch_seconds: float = 400.0,
    num_workers: int = 0,
    stats: LayerStats | None = None,
) -> EmbeddingTable:
    """Embeddings (with durations, in manifest order) of a manifest path or ``Utterance`` list.

    Utterances are read whole and batched by length. With ``cache_dir``, utterances already cached
    (under the same ``key``) are neither read nor embedded; the rest are added to the cache. Every
    audio file to be read is checked first, so a missing one is an error naming it before any compute.
    One process writes a cache at a time: a second one gets :class:`spkpeft.dir_lock.DirectoryInUseError`.
    """
    from spkpeft.data.eval_dataset import build_eval_loader
    from spkpeft.data.manifest import load_utterances
    from spkpeft.eval.embed import EmbeddingCache

    utts = load_utterances(manifest, need_speaker=False) if isinstance(manifest, (str, Path)) else manifest
    utts = list(utts)
    if not utts:
        raise ValueError(f"nothing to embed: the manifest {manifest!s:.200} has no utterances")
    cached: dict[str, np.ndarray] = {}
    if cache_dir is not None and Path(cache_dir).exists():
        cached = EmbeddingCache(cache_dir, key).vectors
    todo = [u for u in utts if u.id not in cached]
    log.info("embedding %d utterances (%d already cached)", len(todo), len(utts) - len(todo))
    if todo:
        check_audio_files(todo)
        check_long_enough(model, {f"{u.id} ({u.path})": int(round(u.duration * SAMPLE_RATE)) for u in todo})
        loader = build_eval_loader(todo, batch_size, max_batch_seconds, num_workers=num_workers)
        device = next(model.parameters()).device

        def embed_fn(wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            return model.embed(wav.to(device), lengths.to(device))

        with exclusive_dir(cache_dir, "embedding cache") if cache_dir is not None else nullcontext():
            table = extract_embeddings(
                stats.wrap(embed_fn) if stats is not None else embed_fn,
                loader,
                cache_path=cache_dir,
                chunk_seconds=chunks.chunk_seconds,
                overlap_seconds=chunks.overlap_seconds,
                cache_key=key,
                total=len(loader),
            )
        if cache_dir is None:
            return table.subset([u.id for u in utts])
    cache = EmbeddingCache(cache_dir, key)
    ids = [u.id for u in utts]
    return EmbeddingTable(ids, np.stack([cache.vectors[u] for u in ids]), [cache.durations[u] for u in ids])


def check_audio_files(utts: Sequence[Any]) -> None:
    """Raise FileNotFoundError naming the missing audio files of a list of utterances (first few)."""
    missing = sorted({u.path for u in utts if not Path(u.path).is_file()})
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} audio file(s) of the manifest do not exist, e.g. {missing[:5]} "
            "(relative paths are resolved from the current directory)"
        )


def check_long_enough(model: Any, samples: dict[str, int]) -> None:
    """Raise ValueError naming every input (``name -> samples at 16 kHz``) too short to give the
    backbone's CNN a single frame, and the shortest length that does."""
    frame_lengths = getattr(model.backbone, "frame_lengths", None)
    if frame_lengths is None or not samples:
        return
    frames = frame_lengths(torch.tensor(list(samples.values()), dtype=torch.int64)).tolist()
    short = [f"{name} ({n} samples)" for (name, n), f in zip(samples.items(), frames) if f < 1]
    if short:
        need = next(n for n in range(1, SAMPLE_RATE) if int(frame_lengths(torch.tensor([n]))[0]) >= 1)
        more = f" and {len(short) - 5} more" if len(short) > 5 else ""
        raise ValueError(
            f"too short for the backbone (it needs at least {need} samples = {1000 * need / SAMPLE_RATE:.1f} "
            f"ms at 16 kHz): {', '.join(short[:5])}{more}"
        )


def embed_waveform(
    model: Any,
    wav: np.ndarray | torch.Tensor,
    chunks: ChunkSettings = ChunkSettings(),
    name: str = "the audio",
) -> np.ndarray:
    """Embedding (E,) float32 of one mono 16 kHz waveform (S,), chunk-averaged when long. Errors (too
    short, non-finite result) name the input as ``name``."""
    x = torch.as_tensor(np.asarray(wav, dtype=np.float32)).reshape(1, -1)
    check_long_enough(model, {name: int(x.shape[1])})
    device = next(model.parameters()).device
    chunk, hop = chunks.samples()

    def embed_fn(w: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        return model.embed(w.to(device), n.to(device))

    lengths = torch.tensor([x.shape[1]], dtype=torch.int64)
    emb = embed_rows(embed_fn, x, lengths, chunk, hop, max_rows=8)[0].numpy()
    if not np.isfinite(emb).all():
        raise ValueError(f"the model gave a non-finite embedding for {name}")
    return emb
