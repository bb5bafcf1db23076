"""The resumable embedding cache: a directory of ``emb-NNNNN.safetensors`` shards.

Each shard holds ``embeddings`` (n, E) and ``durations`` (n,) with the ids (and an optional ``cache_key``,
e.g. a model fingerprint) in the header metadata; a shard is written atomically (rename), so an
interrupted run loses only the utterances not yet flushed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from spkpeft.atomic import replace_file

log = logging.getLogger(__name__)


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
        replace_file(final, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
        self._n_shards += 1
        self._next += 1
        self.vectors.update(vectors)
        self.durations.update(durations)
