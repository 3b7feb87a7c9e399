"""Shared behaviour of our data modules: transforms, splits under DDP, and data loaders."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..errors import ConfigurationError
from .transforms import build_transform, resolve_preprocessing


class EvenlyShardedSampler(DistributedSampler):
    """Give each process every world_size-th sample, without the padding DistributedSampler adds.

    Padding repeats samples, so validation and test metrics under DDP would count some images twice.
    Lightning keeps a sampler that is already a DistributedSampler.
    """

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, len(self.dataset), self.num_replicas))

    def __len__(self) -> int:
        return math.ceil((len(self.dataset) - self.rank) / self.num_replicas)


class ClassificationDataModule(LightningDataModule):
    """Turns a labelled image source into train/val/test loaders; subclasses say where images come from.

    Subclasses implement `class_names` and `make_datasets`.
    """

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        interpolation: str | None = None,
        crop_pct: float | None = None,
        train_transform: Mapping[str, Any] | None = None,
        pin_memory: bool | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigurationError(f"data.batch_size={batch_size} must be at least 1.")
        if num_workers < 0:
            raise ConfigurationError(f"data.num_workers={num_workers} must be 0 or more.")
        if image_size is not None and image_size < 1:
            raise ConfigurationError(f"data.image_size={image_size} must be at least 1 pixel.")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size = image_size
        self.mean = None if mean is None else tuple(mean)
        self.std = None if std is None else tuple(std)
        self.interpolation = interpolation
        self.crop_pct = crop_pct
        self.train_transform = dict(train_transform or {})
        self.pin_memory = pin_memory
        self.preprocessing: dict[str, Any] | None = None
        self.datasets: dict[str, Dataset] = {}

    @property
    def class_names(self) -> list[str]:
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def make_datasets(self, train_transform, eval_transform) -> dict[str, Dataset]:
        """Return the "train", "val" and "test" datasets with the given transforms applied."""
        raise NotImplementedError

    def resolve_preprocessing(self, backbone: str) -> dict[str, Any]:
        """Fix the preprocessing from the backbone's data config and this module's overrides."""
        self.preprocessing = resolve_preprocessing(
            backbone,
            image_size=self.image_size,
            mean=self.mean,
            std=self.std,
            interpolation=self.interpolation,
            crop_pct=self.crop_pct,
        )
        return self.preprocessing

    def use_preprocessing(self, preprocessing: Mapping[str, Any]) -> None:
        """Use the preprocessing a trained model was trained with (from its checkpoint)."""
        self.preprocessing = dict(preprocessing)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        if self.preprocessing is None:
            raise RuntimeError("Call resolve_preprocessing() or use_preprocessing() before setup().")
        self.datasets = self.make_datasets(
            train_transform=build_transform(self.preprocessing, True, self.train_transform),
            eval_transform=build_transform(self.preprocessing, False),
        )
        too_small = len(self.datasets["train"]) < self.batch_size
        if too_small:
            raise ConfigurationError(
                f"The training split has {len(self.datasets['train'])} images, fewer than "
                f"data.batch_size={self.batch_size}; lower data.batch_size."
            )

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        sampler = None
        trainer = self.trainer
        if not shuffle and trainer is not None and trainer.world_size > 1:
            sampler = EvenlyShardedSampler(
                self.datasets[split], num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
            )
        pin_memory = torch.cuda.is_available() if self.pin_memory is None else self.pin_memory
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=pin_memory,
            persistent_workers=self.num_workers > 0,
            drop_last=shuffle,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
