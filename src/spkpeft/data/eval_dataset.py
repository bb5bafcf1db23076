"""Evaluation data: whole utterances, batched by similar length so little padding is computed.

Batch dict (docs/INTERFACES.md): ``wav`` (B, S) float32 right-padded with zeros, ``lengths`` (B,) int64,
``ids`` list[str]. A missing or unreadable file raises (evaluation must not silently drop trials).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from spkpeft.data.manifest import Utterance, load_utterances


class EvalDataset(Dataset):
    """Item ``i`` -> {"wav" (S,), "id"}: the whole utterance, optionally cut to ``max_seconds``."""

    def __init__(self, utterances: Sequence[Utterance], max_seconds: float | None = None) -> None:
        if not utterances:
            raise ValueError("evaluation set is empty")
        self.utts = list(utterances)
        self.max_seconds = max_seconds

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, index: int) -> dict:
        u = self.utts[index]
        dur = u.duration if not self.max_seconds else min(u.duration, self.max_seconds)
        return {"wav": torch.from_numpy(u.load(0.0, dur)), "id": u.id}


def collate_eval(items: list[dict]) -> dict:
    """Utterances -> {"wav" (B, S_max) zero-padded, "lengths" (B,) int64, "ids" list[str]}."""
    lengths = torch.tensor([len(it["wav"]) for it in items], dtype=torch.int64)
    wav = torch.zeros(len(items), int(lengths.max()), dtype=torch.float32)
    for row, it in enumerate(items):
        wav[row, : len(it["wav"])] = it["wav"]
    return {"wav": wav, "lengths": lengths, "ids": [it["id"] for it in items]}


class LengthBatchSampler(Sampler[list[int]]):
    """Batches of indices sorted by duration; a batch holds at most ``batch_size`` utterances and at
    most ``max_batch_seconds`` of padded audio (rows x longest), but always at least one utterance."""

    def __init__(self, durations: Sequence[float], batch_size: int = 16, max_batch_seconds: float = 0.0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = sorted(range(len(durations)), key=lambda i: (durations[i], i))
        self.batches: list[list[int]] = []
        cur: list[int] = []
        for i in order:
            longest = durations[i]  # sorted ascending: the newcomer is the longest
            full = len(cur) >= batch_size or (
                max_batch_seconds > 0 and cur and (len(cur) + 1) * longest > max_batch_seconds
            )
            if full:
                self.batches.append(cur)
                cur = []
            cur.append(i)
        if cur:
            self.batches.append(cur)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def build_eval_loader(
    manifest: str | Path | Sequence[Utterance],
    batch_size: int = 16,
    max_batch_seconds: float = 0.0,
    max_seconds: float | None = None,
    num_workers: int = 0,
) -> DataLoader:
    """A DataLoader over whole utterances of a manifest (path or :class:`Utterance` list), batched by
    length. ``max_seconds`` cuts each utterance to its first N seconds (None: whole)."""
    utts = load_utterances(manifest, need_speaker=False) if isinstance(manifest, (str, Path)) else manifest
    ds = EvalDataset(utts, max_seconds)
    durs = [min(u.duration, max_seconds) if max_seconds else u.duration for u in ds.utts]
    return DataLoader(
        ds,
        batch_sampler=LengthBatchSampler(durs, batch_size, max_batch_seconds),
        collate_fn=collate_eval,
        num_workers=num_workers,
    )
