"""The dataset interface our data modules share: RGB images with integer labels, through a transform."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image
from torch.utils.data import Dataset


class LabelledImageDataset(Dataset):
    """Serves `(transform(image), label)`; subclasses say how to load image `index` as RGB.

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

    def __getitem__(self, index: int):
        image = self.load_image(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])
