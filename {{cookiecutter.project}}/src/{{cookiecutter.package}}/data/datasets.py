"""The dataset interface our data modules share: RGB images with integer labels, through a transform."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset


def split_key(key: Any) -> tuple[int, int | None]:
    """A dataset key is an index, or (index, seed) from the training sampler (see data/base.py)."""
    if isinstance(key, (tuple, list)):
        return int(key[0]), int(key[1])
    return int(key), None


def seed_random_generators(seed: int) -> None:
    """Seed what random transforms draw from (Python, NumPy, torch on the CPU), so that an image's
    augmentation depends only on its seed: the same in every worker process and after a resume."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.random.default_generator.manual_seed(seed)


class LabelledImageDataset(Dataset):
    """Serves `(transform(image), label)`; subclasses say how to load image `index` as RGB.

    A key is an index, or `(index, seed)`: the training sampler gives every sample of an epoch a seed
    for its random augmentation.

    `labels` (an int array) is public so that class counts and samplers need not load any image.
    """

    def __init__(self, labels: np.ndarray, transform: Callable | None = None) -> None:
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def load_image(self, index: int) -> Image.Image:
        """Return image `index` as an RGB PIL image, before any transform."""
        raise NotImplementedError

    def image_size(self, index: int) -> tuple[int, int]:
        """Return (width, height) of image `index`; subclasses answer without decoding where they can."""
        return self.load_image(index).size

    def transformed(self, image: Image.Image, seed: int | None = None) -> Any:
        """Apply the transform; with a seed, its random draws are those of that seed."""
        if self.transform is None:
            return image
        if seed is not None:
            seed_random_generators(seed)
        return self.transform(image)

    def __getitem__(self, key):
        index, seed = split_key(key)
        return self.transformed(self.load_image(index), seed), int(self.labels[index])
