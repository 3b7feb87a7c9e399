"""Shared behaviour of our data modules: the splits as datasets with their transforms, checks of the
batch size, and the loaders (one order under DDP and after a resume)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import rich
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.accelerators import CPUAccelerator
from torch.utils.data import DataLoader

from ..errors import ConfigurationError
from .balance import balanced_class_weights
from .datasets import LabelledImageDataset
from .samplers import EvenlyShardedSampler, TrainingSampler
from .summary import class_count_table, class_counts, imbalance_message
from .transforms import build_transform, train_transform_arguments

log = logging.getLogger(__name__)
# Loader workers per process when training on an accelerator, at most (each holds a copy of the dataset).
MAX_AUTO_WORKERS = 8
# Warn when the incomplete last batch, dropped from every epoch, is at least this part of the images.
DROPPED_WARNING = 0.25
WEIGHTED_SAMPLER_NEEDS_ONE_DEVICE = (
    "data.weighted_sampler=true works on one device only (under DDP each process would draw from the "
    "whole training set). Set data.weighted_sampler=false or train on one device."
)


class ClassificationDataModule(LightningDataModule):
    """Turns a labelled image source into train/val/test loaders; subclasses say where images come from.

    Subclasses implement `class_names` and `make_datasets`.
    """

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int | None = 0,
        image_size: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        interpolation: str | None = None,
        crop_pct: float | None = None,
        train_transform: Mapping[str, Any] | None = None,
        pin_memory: bool | None = None,
        augment: str = "light",
        random_erasing: float = 0.0,
        weighted_sampler: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()  # the ranges of these values are checked in run/settings.py
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size = image_size
        self.mean = None if mean is None else tuple(mean)
        self.std = None if std is None else tuple(std)
        self.interpolation = interpolation
        self.crop_pct = crop_pct
        self.train_transform = dict(train_transform or {})
        train_transform_arguments(augment, random_erasing, self.train_transform)  # fail before any loading
        self.augment = augment
        self.random_erasing = random_erasing
        self.weighted_sampler = weighted_sampler
        self.seed = seed  # the run's seed: training order and augmentation (split_seed fixes the splits)
        self.pin_memory = pin_memory
        self.preprocessing: dict[str, Any] | None = None
        self.datasets: dict[str, LabelledImageDataset] = {}
        self.resume_at: tuple[int, int] | None = None  # (epoch, batches done) from a checkpoint

    @property
    def class_names(self) -> list[str]:
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def make_datasets(self, train_transform, eval_transform) -> dict[str, LabelledImageDataset]:
        """Return the "train", "val" and "test" datasets with the given transforms applied."""
        raise NotImplementedError

    def training_labels(self) -> np.ndarray:
        """The label of every training image, known before setup() (no image is loaded)."""
        raise NotImplementedError

    def balanced_class_weights(self) -> list[float]:
        """model.class_weights=auto: weights from the training split's class counts (data/balance.py)."""
        return balanced_class_weights(self.training_labels(), self.class_names)

    @property
    def preprocessing_overrides(self) -> dict[str, Any]:
        """The data.* settings that override the model's own preprocessing (None keeps the model's);
        models.preprocessing.resolve_preprocessing applies them."""
        return {
            "image_size": self.image_size,
            "mean": self.mean,
            "std": self.std,
            "interpolation": self.interpolation,
            "crop_pct": self.crop_pct,
        }

    def use_preprocessing(self, preprocessing: Mapping[str, Any]) -> None:
        """Build the transforms from the preprocessing the model decided (resolved for a new model by
        models.preprocessing, or stored in a trained model's checkpoint)."""
        self.preprocessing = dict(preprocessing)

    def typical_image_side(self) -> float | None:
        """The median short side of the training images in px, when it is cheap to know."""
        return None

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        if self.preprocessing is None:
            raise RuntimeError("Call use_preprocessing() with the model's preprocessing before setup().")
        self.datasets = self.make_datasets(
            train_transform=build_transform(
                self.preprocessing, True, self.augment, self.random_erasing, self.train_transform
            ),
            eval_transform=build_transform(self.preprocessing, False),
        )
        if stage in (None, "fit"):  # testing a checkpoint needs no full training batch
            self.check_batch_size_fits(len(self.datasets["train"]))
        if self.trainer is None or self.trainer.is_global_zero:
            self.report_class_counts()

    def check_batch_size_fits(self, images: int) -> None:
        """Refuse a batch larger than each process's share of the training split (it would train on
        nothing: incomplete batches are dropped), and warn when the dropped remainder is a large part
        of every epoch, naming a batch size that divides the share better."""
        processes = self.trainer.world_size if self.trainer is not None else 1
        share = images // processes
        on = f" on each of {processes} processes" if processes > 1 else ""
        if share < self.batch_size:
            raise ConfigurationError(
                f"The training split has {images} images{f' ({share}{on})' if on else ''}, fewer than "
                f"data.batch_size={self.batch_size}; lower data.batch_size (at most {share})."
            )
        steps, dropped = divmod(share, self.batch_size)
        if dropped >= DROPPED_WARNING * share:
            log.warning(
                "data.batch_size=%d with %d training images%s: %d steps per epoch, and %d images (%.0f%%) "
                "left out of each epoch (incomplete batches are dropped). data.batch_size=%d would use "
                "nearly all of them in %d steps.",
                self.batch_size,
                share,
                on,
                steps,
                dropped,
                100 * dropped / share,
                share // (steps + 1),
                steps + 1,
            )

    def report_class_counts(self) -> None:
        """Print the images per class and split, and warn when the training classes are imbalanced."""
        labels = {split: dataset.labels for split, dataset in self.datasets.items()}
        rich.print(class_count_table(self.class_names, labels))
        message = imbalance_message(self.class_names, labels["train"])
        if message and not self.weighted_sampler:
            log.warning(message)

    def resolved_num_workers(self) -> int:
        """`num_workers`, or when it is None, a number that fits the machine.

        Training on the CPU, loader workers compete with the model for the same cores (measured in
        benchmarks/data_loading.py): 0. On an accelerator the cores are free for decoding: all but one
        of this process's share of them, at most MAX_AUTO_WORKERS.
        """
        if self.num_workers is not None:
            return self.num_workers
        trainer = self.trainer
        if trainer is None or isinstance(trainer.accelerator, CPUAccelerator):
            return 0
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(0, min(MAX_AUTO_WORKERS, cores // max(1, trainer.num_devices) - 1))

    def class_balanced_weights(self) -> torch.Tensor:
        """Weights inversely proportional to each training image's class frequency."""
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:
            raise ConfigurationError(WEIGHTED_SAMPLER_NEEDS_ONE_DEVICE)
        labels = self.datasets["train"].labels
        return torch.as_tensor(1.0 / class_counts(labels, self.num_classes)[labels], dtype=torch.double)

    def _loader_arguments(self) -> dict[str, Any]:
        pin_memory = torch.cuda.is_available() if self.pin_memory is None else self.pin_memory
        num_workers = self.resolved_num_workers()
        return {
            "batch_size": self.batch_size,
            "num_workers": num_workers,
            "pin_memory": pin_memory,
            "persistent_workers": num_workers > 0,
        }

    def _evaluation_loader(self, split: str) -> DataLoader:
        trainer, sampler = self.trainer, None
        if trainer is not None and trainer.world_size > 1:
            sampler = EvenlyShardedSampler(
                self.datasets[split], num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
            )
        return DataLoader(self.datasets[split], sampler=sampler, **self._loader_arguments())

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        sampler = TrainingSampler(
            self.datasets["train"],
            seed=self.seed,
            num_replicas=trainer.world_size if trainer is not None else 1,
            rank=trainer.global_rank if trainer is not None else 0,
            weights=self.class_balanced_weights() if self.weighted_sampler else None,
        )
        if self.resume_at is not None:
            epoch, batches = self.resume_at
            sampler.start_at(epoch, batches * self.batch_size)
            self.resume_at = None
        return DataLoader(self.datasets["train"], sampler=sampler, drop_last=True, **self._loader_arguments())

    # Resuming: Lightning saves state_dict() in every checkpoint and hands it to load_state_dict()
    # before it asks for the training loader again, so the resumed run starts where the other stopped.

    def state_dict(self) -> dict[str, int]:
        """Where training is in its order: the epoch and how many of its batches are done."""
        if self.trainer is None:
            return {}
        fit_loop = self.trainer.fit_loop
        epoch = fit_loop.epoch_progress.current.processed
        batches = fit_loop.epoch_loop.batch_progress.current.processed
        if batches >= self.trainer.num_training_batches:  # the epoch is over: the next one starts afresh
            epoch, batches = epoch + 1, 0
        return {"epoch": epoch, "batches": batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state:
            self.resume_at = (state["epoch"], state["batches"])

    def val_dataloader(self) -> DataLoader:
        return self._evaluation_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._evaluation_loader("test")
