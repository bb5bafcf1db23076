"""Embedding extraction over evaluation batches: long-recording chunking and a resumable disk cache.

``embed_fn(wav (B, S) float32, lengths (B,) int64) -> (B, E)`` is any speaker model's embedding call
(e.g. ``SpeakerModel.embed``); it moves tensors to its own device. Batches are the batch dicts of
docs/INTERFACES.md with keys ``wav``, ``lengths`` and ``ids``.

Recordings longer than ``chunk_seconds`` are cut into windows of exactly ``chunk_seconds`` that overlap
by ``overlap_seconds`` (the last window is aligned to the end of the recording) and the window
embeddings are averaged, which bounds memory on long test files. Windows go to ``embed_fn`` in
sub-batches of at most the batch's row count, so no call is larger than the batch the loader sized.

Cache (``cache_path``, a directory): shards ``emb-NNNNN.safetensors`` holding ``embeddings`` (n, E) and
``durations`` (n,) with the ids (and an optional ``cache_key``, e.g. a model fingerprint) in the header
metadata. Shards are written atomically every ``flush_every`` new utterances, so an interrupted run
loses at most that much; a rerun loads every shard and computes only the ids not yet cached.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import torch

from spkpeft.data.config import SAMPLE_RATE
from spkpeft.eval.table import EmbeddingTable
from spkpeft.progress import track

log = logging.getLogger(__name__)

EmbedFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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


class EmbeddingCache:
    """The shard directory described in the module docstring."""

    def __init__(self, path: str | Path, cache_key: str | None = None) -> None:
        self.path = Path(path)
        self.cache_key = cache_key
        self.vectors: dict[str, np.ndarray] = {}
        self.durations: dict[str, float] = {}
        self._n_shards = 0
        self._next = 0  # index of the next shard file
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        from safetensors import safe_open

        for shard in sorted(self.path.glob("emb-[0-9]*.safetensors")):
            with safe_open(str(shard), framework="np") as f:
                meta = f.metadata() or {}
                if meta.get("cache_key") != (self.cache_key or ""):
                    raise ValueError(
                        f"embedding cache {shard} was written for cache_key {meta.get('cache_key')!r}, "
                        f"not {self.cache_key!r}: delete {self.path} or use another cache path"
                    )
                ids = json.loads(meta["ids"])
                emb, dur = f.get_tensor("embeddings"), f.get_tensor("durations")
            self.vectors.update(zip(ids, emb))
            self.durations.update(zip(ids, dur.tolist()))
            self._n_shards += 1
            self._next = max(self._next, int(shard.stem.split("-")[1]) + 1)
        log.info(
            "embedding cache %s: %d utterances in %d shards", self.path, len(self.vectors), self._n_shards
        )

    def write(self, vectors: Mapping[str, np.ndarray], durations: Mapping[str, float]) -> None:
        """Append one shard with the given utterances (atomic rename)."""
        if not vectors:
            return
        from safetensors.numpy import save_file

        self.path.mkdir(parents=True, exist_ok=True)
        ids = list(vectors)
        tensors = {
            "embeddings": np.stack([vectors[u] for u in ids]).astype(np.float32),
            "durations": np.array([durations[u] for u in ids], dtype=np.float64),
        }
        meta = {"ids": json.dumps(ids), "cache_key": self.cache_key or ""}
        final = self.path / f"emb-{self._next:05d}.safetensors"
        tmp = final.with_suffix(".tmp")
        save_file(tensors, str(tmp), metadata=meta)
        os.replace(tmp, final)
        self._n_shards += 1
        self._next += 1
        self.vectors.update(vectors)
        self.durations.update(durations)


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
    chunk_seconds: float = 20.0,
    overlap_seconds: float = 2.0,
    sample_rate: int = SAMPLE_RATE,
    cache_key: str | None = None,
    flush_every: int = 2000,
    total: int | None = None,
) -> EmbeddingTable:
    """Embed every utterance the batches yield; returns an :class:`EmbeddingTable` with ``durations``
    (seconds) in first-seen order. Ids already in the cache are not recomputed; when a whole batch is
    cached, ``embed_fn`` is not called for it. ``total``: number of batches, for the progress bar."""
    chunk = int(round(chunk_seconds * sample_rate))
    hop = chunk - int(round(overlap_seconds * sample_rate))
    if chunk <= 0 or hop <= 0:
        raise ValueError(
            f"need chunk_seconds > overlap_seconds >= 0, got {chunk_seconds} and {overlap_seconds}"
        )
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
