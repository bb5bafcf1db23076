"""Deterministic, resumable, distributed batch order.

Every epoch's order is a function of ``(seed, epoch)`` only (the training dataset makes each item's crop
and augmentation a function of ``(seed, epoch, index)``), so a run resumed at batch ``k`` of an epoch
sees exactly the batches an uninterrupted run would have seen, without loading the skipped ones.

Distributed: global batch ``j`` holds ``batch_size * world_size`` consecutive items of the epoch's
permutation; rank ``r`` takes its ``r``-th slice (so each process draws ``batch_size`` items per step).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class EpochBatchSampler(Sampler[list[int]]):
    """Yields this process's batches of dataset indices for one epoch.

    ``len`` is the number of batches per epoch (an incomplete last global batch is dropped, so every
    process runs the same number of steps). ``set_epoch(e, start_batch)`` selects the permutation and
    skips the first ``start_batch`` batches (resume).
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        batch_key: str = "train.batch_size",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if num_items < batch_size * world_size:
            raise ValueError(
                f"the training set has {num_items} utterances, fewer than one global batch "
                f"({batch_size} x {world_size} processes): lower {batch_key}"
            )
        self.num_items, self.batch_size, self.seed = num_items, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def __len__(self) -> int:
        return self.num_items // (self.batch_size * self.world_size)

    def order(self) -> list[int]:
        return np.random.default_rng((self.seed, self.epoch)).permutation(self.num_items).tolist()

    def __iter__(self) -> Iterator[list[int]]:
        order = self.order()
        global_bs = self.batch_size * self.world_size
        for j in range(self.start_batch, len(self)):
            lo = j * global_bs + self.rank * self.batch_size
            yield order[lo : lo + self.batch_size]


class GroupBatchSampler(Sampler[list[int]]):
    """:class:`EpochBatchSampler` over groups of items that must share a batch (e.g. one mixture with
    each of its speakers as the target): the order, resume and sharding are those of the groups, and
    each batch is its groups' items in turn.

    ``groups``: lists of dataset indices, all of one size G; ``batch_size`` counts items and must be a
    multiple of G (a batch holds ``batch_size / G`` groups).
    """

    def __init__(
        self,
        groups: list[list[int]],
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        batch_key: str = "train.batch_size",
    ) -> None:
        sizes = {len(g) for g in groups}
        if len(sizes) != 1:
            raise ValueError(f"groups must all have one size, got sizes {sorted(sizes)}")
        self.group_size = sizes.pop()
        if batch_size % self.group_size:
            raise ValueError(
                f"{batch_key}={batch_size} must be a multiple of the group size {self.group_size} "
                "(every group goes into one batch)"
            )
        self.groups = groups
        self.groups_sampler = EpochBatchSampler(
            len(groups), batch_size // self.group_size, seed, rank, world_size, batch_key
        )

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.groups_sampler.set_epoch(epoch, start_batch)

    def __len__(self) -> int:
        return len(self.groups_sampler)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.groups_sampler:
            yield [i for g in batch for i in self.groups[g]]
