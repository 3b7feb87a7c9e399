"""Which samples each process loads: evaluation splits sharded without padding, and a training order
that is a function of (seed, epoch) alone, so that a resumed run sees what the uninterrupted one saw."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DistributedSampler

from .datasets import LabelledImageDataset


class EvenlyShardedSampler(DistributedSampler):
    """Give each process every world_size-th sample, without the padding DistributedSampler adds.

    Padding repeats samples, so validation and test metrics under DDP would count some images twice.
    Lightning keeps a sampler that is already a DistributedSampler.
    """

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, len(self.dataset), self.num_replicas))

    def __len__(self) -> int:
        return math.ceil((len(self.dataset) - self.rank) / self.num_replicas)


class TrainingSampler(DistributedSampler):
    """The training order, a function of (seed, epoch) alone, so that a resumed run sees what the
    uninterrupted one saw.

    Each epoch draws a permutation of the training set (or, with `weights`, samples with replacement
    in proportion to them) and a seed per sample, which fixes that sample's random augmentation
    (see datasets.seed_random_generators). Each process takes every world_size-th sample; the tail
    that does not divide evenly is dropped, like DistributedSampler(drop_last=True).
    `start_at(epoch, samples)` makes the next iteration begin part-way through an epoch.
    """

    def __init__(
        self,
        dataset: LabelledImageDataset,
        seed: int,
        num_replicas: int = 1,
        rank: int = 0,
        weights: torch.Tensor | None = None,
    ) -> None:
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.weights = weights
        self.skip = 0

    def start_at(self, epoch: int, samples: int) -> None:
        self.set_epoch(epoch)
        self.skip = samples

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(
            int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1, np.uint64)[0] >> 1)
        )
        size, total = len(self.dataset), self.num_samples * self.num_replicas
        if self.weights is None:
            order = torch.randperm(size, generator=generator)[:total]
        else:
            order = torch.multinomial(self.weights, total, replacement=True, generator=generator)
        seeds = torch.randint(2**62, (total,), generator=generator)
        start, self.skip = self.skip, 0
        mine = slice(self.rank + start * self.num_replicas, total, self.num_replicas)
        return zip(order[mine].tolist(), seeds[mine].tolist(), strict=True)
