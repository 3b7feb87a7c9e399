"""The handwritten digits bundled with the package: a real dataset that needs no download.

1,797 grayscale 8x8 images of the digits 0-9 with 16 grey levels, the test set of the UCI "Optical
Recognition of Handwritten Digits" data (E. Alpaydin and C. Kaynak, 1998, CC BY 4.0), as shipped by
scikit-learn. Stored here as `digits.npz` (45 kB) so that the project runs offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from ..errors import ConfigurationError
from .base import ClassificationDataModule
from .datasets import LabelledImageDataset
from .splits import check_fold, cross_validation_split, log_fold, stratified_split

DIGITS_FILE = Path(__file__).with_name("digits.npz")
GREY_LEVELS = 16


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Return the images as uint8 arrays of shape (N, 8, 8) scaled to 0-255, and the labels (N,)."""
    with np.load(DIGITS_FILE) as arrays:
        images = arrays["images"].astype(np.uint16) * 255 // GREY_LEVELS
        return images.astype(np.uint8), arrays["labels"].astype(np.int64)


class ArrayImageDataset(LabelledImageDataset):
    """Images held in a uint8 array, served as RGB PIL images through a transform like files would be."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=None) -> None:
        super().__init__(labels, transform)
        self.images = images

    def load_image(self, index: int) -> Image.Image:
        return Image.fromarray(self.images[index]).convert("RGB")

    def image_size(self, index: int) -> tuple[int, int]:
        return self.images.shape[2], self.images.shape[1]


class DigitsDataModule(ClassificationDataModule):
    """Train/val/test splits of the bundled digits, stratified by class and fixed by `split_seed`.

    `classes` keeps only some digits (e.g. [0, 1, 2, 3, 4]), numbered in the order given. With
    `folds`, the test split stays as it is and the other images are cut into that many stratified
    folds: fold `fold` is the val split, the others the train split. Other arguments (batch size,
    loader and transform settings) are those of ClassificationDataModule.
    """

    def __init__(
        self,
        classes: Sequence[int] | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        folds: int | None = None,
        fold: int = 0,
        image_size: int | None = 32,
        crop_pct: float | None = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(image_size=image_size, crop_pct=crop_pct, **kwargs)
        self.images, self.labels = load_digits()
        self.digits = list(range(10)) if classes is None else [int(digit) for digit in classes]
        if (
            len(set(self.digits)) != len(self.digits)
            or len(self.digits) < 2
            or not set(self.digits) <= set(range(10))
        ):
            raise ConfigurationError(
                f"data.classes={list(classes)}: choose at least 2 different digits of 0-9, e.g. [0,1,2,3,4]."
            )
        if classes is not None:
            keep = np.isin(self.labels, self.digits)
            relabel = np.zeros(10, dtype=np.int64)
            relabel[self.digits] = np.arange(len(self.digits))
            self.images, self.labels = self.images[keep], relabel[self.labels[keep]]
        self.split_indices = stratified_split(self.labels, val_fraction, test_fraction, split_seed)
        check_fold(folds, fold)
        if folds is not None:
            pool = np.sort(np.concatenate([self.split_indices["train"], self.split_indices["val"]]))
            parts = cross_validation_split(self.labels[pool], folds, fold, split_seed, self.class_names)
            self.split_indices.update({split: pool[indices] for split, indices in parts.items()})
            log_fold(folds, fold, {split: len(indices) for split, indices in self.split_indices.items()})

    def typical_image_side(self) -> float:
        return 8.0  # every digit is 8x8

    @property
    def class_names(self) -> list[str]:
        return [str(digit) for digit in self.digits]

    def training_labels(self) -> np.ndarray:
        return self.labels[self.split_indices["train"]]

    def make_datasets(self, train_transform, eval_transform) -> dict[str, Dataset]:
        transforms = {"train": train_transform, "val": eval_transform, "test": eval_transform}
        return {
            split: ArrayImageDataset(self.images[indices], self.labels[indices], transforms[split])
            for split, indices in self.split_indices.items()
        }
