"""Embedding extraction: of evaluation batches (any ``embed_fn``), of a manifest with a saved speaker
model (cached, batched by length), and of one waveform; all chunk long recordings the same way.

``embed_fn(wav (B, S) float32, lengths (B,) int64) -> (B, E)`` is any speaker model's embedding call
(e.g. ``SpeakerModel.embed``); it moves tensors to its own device. Batches are the batch dicts of
docs/INTERFACES.md with keys ``wav``, ``lengths`` and ``ids``.

Recordings longer than ``chunk_seconds`` are cut into windows of exactly ``chunk_seconds`` that overlap
by ``overlap_seconds`` (the last window is aligned to the end of the recording) and the window
embeddings are averaged, which bounds memory on long test files. Windows go to ``embed_fn`` in
sub-batches of at most the batch's row count, so no call is larger than the batch the loader sized.
So an utterance gets the same embedding from ``spkpeft embed`` / ``spkpeft eval`` as from
:meth:`spkpeft.SpeakerVerifier.embed`.

Cache (``cache_path``, a directory): :class:`spkpeft.eval.embedding_cache.EmbeddingCache`, flushed every
``flush_every`` new utterances; a rerun loads every shard and computes only the ids not yet cached. Its
key (:func:`cache_key`) is the model's fingerprint plus the chunk settings, so a cache written by
another model (or other settings) is refused rather than silently reused.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from spkpeft.data.config import SAMPLE_RATE
from spkpeft.dir_lock import exclusive_dir
from spkpeft.eval.config import CHUNK_SECONDS, OVERLAP_SECONDS
from spkpeft.eval.embedding_cache import EmbeddingCache
from spkpeft.eval.table import EmbeddingTable
from spkpeft.progress import track

if TYPE_CHECKING:
    from spkpeft.eval.layer_stats import LayerStats

log = logging.getLogger(__name__)

EmbedFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ChunkSettings:
    """Long-recording windows: ``chunk_seconds`` long, overlapping by ``overlap_seconds``."""

    chunk_seconds: float = CHUNK_SECONDS
    overlap_seconds: float = OVERLAP_SECONDS

    def samples(self, sample_rate: int = SAMPLE_RATE) -> tuple[int, int]:
        """(window, hop) in samples."""
        chunk = int(round(self.chunk_seconds * sample_rate))
        hop = chunk - int(round(self.overlap_seconds * sample_rate))
        if chunk <= 0 or hop <= 0:
            raise ValueError(
                f"need chunk_seconds > overlap_seconds >= 0, got {self.chunk_seconds}, {self.overlap_seconds}"
            )
        return chunk, hop


def chunk_starts(length: int, chunk: int, hop: int) -> list[int]:
    """Start samples of the windows covering ``length`` samples: ``[0]`` when it fits in one window."""
    if length <= chunk:
        return [0]
    return [*range(0, length - chunk, hop), length - chunk]


def embed_rows(
    embed_fn: EmbedFn,
    wav: torch.Tensor,
    lengths: torch.Tensor,
    chunk: int,
    hop: int,
    max_rows: int,
) -> torch.Tensor:
    """Embeddings (B, E) float32 on CPU of wav (B, S) with real lengths (B,), long rows chunk-averaged.

    Short rows are embedded together, trimmed to their longest; the windows of long rows are embedded
    in sub-batches of at most ``max_rows`` and averaged per row.
    """
    lengths = lengths.to(torch.int64).cpu()
    out: dict[int, torch.Tensor] = {}
    short = [i for i, n in enumerate(lengths.tolist()) if n <= chunk]
    long_ = [i for i, n in enumerate(lengths.tolist()) if n > chunk]
    if short:
        s_len = lengths[short]
        emb = _call(embed_fn, wav[short, : int(s_len.max())], s_len)
        out.update(zip(short, emb))
    if long_:
        windows, owner = [], []
        for i in long_:
            for s in chunk_starts(int(lengths[i]), chunk, hop):
                windows.append(wav[i, s : s + chunk])
                owner.append(i)
        parts = []
        for lo in range(0, len(windows), max_rows):
            sub = torch.stack(windows[lo : lo + max_rows])  # (<= max_rows, chunk), every window full
            parts.append(_call(embed_fn, sub, torch.full((sub.shape[0],), chunk, dtype=torch.int64)))
        emb = torch.cat(parts)
        owner_t = torch.tensor(owner)
        for i in long_:
            out[i] = emb[owner_t == i].mean(dim=0)
    return torch.stack([out[i] for i in range(wav.shape[0])])


def _call(embed_fn: EmbedFn, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        emb = embed_fn(wav, lengths)
    if emb.ndim != 2 or emb.shape[0] != wav.shape[0]:
        raise ValueError(f"embed_fn must return (B={wav.shape[0]}, E), got shape {tuple(emb.shape)}")
    return emb.detach().float().cpu()


def _check_batch(batch: Mapping) -> None:
    missing = [k for k in ("wav", "lengths", "ids") if k not in batch]
    if missing:
        raise KeyError(f"eval batch lacks keys {missing}; it has {sorted(batch)} (see docs/INTERFACES.md)")
    if len(batch["ids"]) != batch["wav"].shape[0]:
        raise ValueError(f"batch has {len(batch['ids'])} ids but wav of shape {tuple(batch['wav'].shape)}")


def extract_embeddings(
    embed_fn: EmbedFn,
    batches: Iterable[Mapping],
    cache_path: str | Path | None = None,
    chunk_seconds: float = CHUNK_SECONDS,
    overlap_seconds: float = OVERLAP_SECONDS,
    sample_rate: int = SAMPLE_RATE,
    cache_key: str | None = None,
    flush_every: int = 2000,
    total: int | None = None,
) -> EmbeddingTable:
    """Embed every utterance the batches yield; returns an :class:`EmbeddingTable` with ``durations``
    (seconds) in first-seen order. Ids already in the cache are not recomputed; when a whole batch is
    cached, ``embed_fn`` is not called for it. ``total``: number of batches, for the progress bar."""
    chunk, hop = ChunkSettings(chunk_seconds, overlap_seconds).samples(sample_rate)
    cache = EmbeddingCache(cache_path, cache_key) if cache_path is not None else None
    # the cache's dicts are the store (a flush adds to them); without a cache, plain dicts
    vectors: dict[str, np.ndarray] = cache.vectors if cache else {}
    durations: dict[str, float] = cache.durations if cache else {}
    order: dict[str, None] = {}  # first-seen order of the ids the batches yield
    pending_v: dict[str, np.ndarray] = {}
    pending_d: dict[str, float] = {}
    n_new = 0
    for batch in track(batches, total=total, desc="embeddings"):
        _check_batch(batch)
        ids = [str(u) for u in batch["ids"]]
        first: dict[str, int] = {}  # first row of each id in this batch, in batch order
        for i, u in enumerate(ids):
            first.setdefault(u, i)
        todo = [i for u, i in first.items() if u not in vectors and u not in pending_v]
        order.update(dict.fromkeys(first))
        if not todo:
            continue
        n_new += len(todo)
        lengths = torch.as_tensor(batch["lengths"])[todo]
        emb = embed_rows(embed_fn, batch["wav"][todo], lengths, chunk, hop, max_rows=len(ids))
        bad = [ids[i] for j, i in enumerate(todo) if not bool(torch.isfinite(emb[j]).all())]
        if bad:  # never cached: fixing the recording must be enough
            raise ValueError(f"non-finite embeddings of {bad[:5]} ({len(bad)} in the batch); none was cached")
        for j, i in enumerate(todo):
            pending_v[ids[i]] = emb[j].numpy()
            pending_d[ids[i]] = float(lengths[j]) / sample_rate
        if cache and len(pending_v) >= flush_every:
            cache.write(pending_v, pending_d)
            pending_v, pending_d = {}, {}
    if cache:
        cache.write(pending_v, pending_d)
    else:
        vectors.update(pending_v)
        durations.update(pending_d)
    log.info("embeddings: %d utterances, %d computed, %d from cache", len(order), n_new, len(order) - n_new)
    if not order:
        raise ValueError("no batches to embed: the evaluation data set is empty")
    ids = list(order)
    return EmbeddingTable(ids, np.stack([vectors[u] for u in ids]), [durations[u] for u in ids])


MODEL_PARTS = ("model.json", "backend.safetensors", "method", "backbone")  # what model_fingerprint hashes


def model_fingerprint(model_dir: str | Path) -> str:
    """sha256 (16 hex digits) over the files of a saved model: ``model.json``, ``backend.safetensors``
    and the ``.json`` / ``.safetensors`` files under ``method/`` and (an export's) ``backbone/``. What
    evaluating writes into a model directory is not the model and is left out (``scoring/``, and for a
    model directory outside a run its ``embeddings/`` cache and ``report.json``), so evaluating keeps
    the embedding caches valid."""
    root = Path(model_dir)
    h = hashlib.sha256()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix in {".json", ".safetensors"}
        and (p.relative_to(root).parts[0] in MODEL_PARTS)
    )
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


def model_embed_fn(model: Any) -> EmbedFn:
    """``model.embed`` as an :data:`EmbedFn` that moves its inputs to the model's device."""
    device = next(model.parameters()).device
    return lambda wav, lengths: model.embed(wav.to(device), lengths.to(device))


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
        embed_fn = model_embed_fn(model)
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
    chunk, hop = chunks.samples()
    lengths = torch.tensor([x.shape[1]], dtype=torch.int64)
    emb = embed_rows(model_embed_fn(model), x, lengths, chunk, hop, max_rows=8)[0].numpy()
    if not np.isfinite(emb).all():
        raise ValueError(f"the model gave a non-finite embedding for {name}")
    return emb
