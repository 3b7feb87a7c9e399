"""Random draws of a training step (dropout, drop-path, mixup) that depend on the step alone."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer


def step_seed(seed: int, epoch: int, batch: int, rank: int) -> int:
    """A well-mixed 62-bit seed for one process's training batch."""
    return int(np.random.SeedSequence([seed, epoch, batch, rank]).generate_state(1, np.uint64)[0] >> 2)


class SeedEveryStep(Callback):
    """Seed Python, NumPy and torch before every training batch from (seed, epoch, batch, rank).

    Lightning does not save the random generators' states in checkpoints, so a resumed run would
    draw other dropout masks and mixup pairs than the uninterrupted run. Seeded per batch, every
    draw of batch b of epoch e is the same however the run got there: resuming is exact, mid-epoch
    too. (The order and augmentation of the images are fixed the same way by the training sampler.)
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        seed = step_seed(self.seed, trainer.current_epoch, batch_idx, trainer.global_rank)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)  # also seeds every CUDA device
