"""Images stored as files: header checks, unreadable files, splits, class names, optional caching.

ImageFolderDataModule and CsvDataModule only say which files there are and what their labels are;
this module turns those into the train/val/test datasets.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ConfigurationError
from .bad_files import BadFiles
from .base import ClassificationDataModule
from .datasets import LabelledImageDataset, split_key
from .images import READ_ERRORS, load_rgb, read_image_size
from .splits import (
    check_fold,
    check_fraction,
    cross_validation_split,
    log_fold,
    split_by_class,
    stratified_split,
)

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")

# Image paths with their class labels (strings), per source: "all" (to be split) or train/val/test.
LabelledFiles = list[tuple[Path, str]]


class ImageFileDataset(LabelledImageDataset):
    """Image files decoded to RGB on access, or from memory once `cache_images()` has run.

    A file that fails to decode here (truncated data passes the header check) is handled by
    `bad_files`: with "skip" the next readable image of the dataset is served instead.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        labels: np.ndarray,
        sizes: np.ndarray,
        transform=None,
        bad_files: BadFiles | None = None,
    ) -> None:
        super().__init__(labels, transform)
        self.paths = list(paths)
        self.sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
        self.bad_files = bad_files or BadFiles("error")
        self.cache: list[np.ndarray] | None = None

    def load_image(self, index: int) -> Image.Image:
        if self.cache is not None:
            return Image.fromarray(self.cache[index])
        return load_rgb(self.paths[index])

    def image_size(self, index: int) -> tuple[int, int]:
        return int(self.sizes[index, 0]), int(self.sizes[index, 1])

    def __getitem__(self, key):
        index, seed = split_key(key)
        for offset in range(len(self)):
            candidate = (index + offset) % len(self)
            try:
                image = self.load_image(candidate)
            except READ_ERRORS as error:
                failure = error
            else:
                if offset:
                    self.bad_files.report("while loading")
                return self.transformed(image, seed), int(self.labels[candidate])
            self.bad_files.add(self.paths[candidate], failure)
        raise ConfigurationError(f"None of the {len(self)} images of this split can be read.")

    def cache_images(self) -> int:
        """Decode every image into memory (dropping unreadable ones); return the bytes held."""
        keep, arrays = [], []
        for index, path in enumerate(self.paths):
            try:
                arrays.append(np.asarray(load_rgb(path)))
            except READ_ERRORS as error:
                self.bad_files.add(path, error)
            else:
                keep.append(index)
        self.paths = [self.paths[index] for index in keep]
        self.labels, self.sizes = self.labels[keep], self.sizes[keep]
        self.cache = arrays
        return sum(array.nbytes for array in arrays)


def natural_sorted(labels: set[str]) -> list[str]:
    """Sort class labels, numbers by value ("2" before "10"), text alphabetically."""
    if all(re.fullmatch(r"-?\d+", label) for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


class ImageFilesDataModule(ClassificationDataModule):
    """Train/val/test datasets of image files; subclasses implement `find_images`.

    `find_images` returns labelled files either under "all", to be split by `val_fraction` and
    `test_fraction` (stratified, fixed by `split_seed`), or under "train" and optionally "val" and
    "test". A missing "val" is held out of train by `val_fraction`; a missing "test" is the val split.
    With `folds`, the test split stays as it is and the train and val images (train alone when the val
    split is also the test split) are cut into that many stratified folds: fold `fold` is the val split.
    Class names are the labels of the training files, sorted. Every file's header is read at start
    (about 20 µs a file); files that fail then, or later when decoded, follow `bad_files`.
    Other arguments are those of ClassificationDataModule.
    """

    def __init__(
        self,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        folds: int | None = None,
        fold: int = 0,
        bad_files: str = "skip",
        bad_files_list: str | Path | None = None,
        cache_images: bool = False,
        image_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(image_size=image_size, **kwargs)
        check_fold(folds, fold)  # before reading any file
        self.bad_files = BadFiles(bad_files, bad_files_list)
        self.cache = cache_images
        sources = {name: self.readable(files) for name, files in self.find_images().items()}
        self.bad_files.report("when reading image headers")
        self._class_names = natural_sorted(
            {label for _, label, _ in sources.get("train", sources.get("all"))}
        )
        index = {name: i for i, name in enumerate(self._class_names)}
        for split, files in sources.items():
            unknown = sorted({label for _, label, _ in files} - set(index))
            if unknown:
                raise ConfigurationError(
                    f"The {split} split has classes that the training split lacks: {unknown}. A model "
                    f"cannot learn them; add training images of them or remove them from {split}."
                )
        paths = {name: [path for path, _, _ in files] for name, files in sources.items()}
        labels = {name: np.array([index[label] for _, label, _ in files]) for name, files in sources.items()}
        sizes = {
            name: np.array([size for _, _, size in files]).reshape(-1, 2) for name, files in sources.items()
        }
        self.split_files: dict[str, tuple[list[Path], np.ndarray, np.ndarray]] = {}
        assignment = self.assign_splits(labels, val_fraction, test_fraction, split_seed)
        self.test_is_val = assignment["test"] is assignment["val"]
        for split, (source, indices) in assignment.items():
            self.split_files[split] = (
                [paths[source][i] for i in indices],
                labels[source][indices],
                sizes[source][indices],
            )
        if folds is not None:
            self.use_fold(folds, fold, split_seed)
        elif self.test_is_val:
            log.warning(
                "No test split was given: the val split is used as the test split too, so test metrics "
                "are not independent of the checkpoint they chose."
            )

    def use_fold(self, folds: int, fold: int, seed: int) -> None:
        """Make fold `fold` of the images outside the test split the val split, the other folds train.
        Without a test split of its own, the val split held out of train stays as the test split."""
        pooled = ["train"] if self.test_is_val else ["train", "val"]
        paths = [path for split in pooled for path in self.split_files[split][0]]
        labels = np.concatenate([self.split_files[split][1] for split in pooled])
        sizes = np.concatenate([self.split_files[split][2] for split in pooled])
        for split, indices in cross_validation_split(labels, folds, fold, seed, self._class_names).items():
            self.split_files[split] = ([paths[i] for i in indices], labels[indices], sizes[indices])
        self.test_is_val = False
        log_fold(folds, fold, {split: len(files[1]) for split, files in self.split_files.items()})

    def find_images(self) -> dict[str, LabelledFiles]:
        """Return the labelled image files under "all", or under "train" (and "val", "test")."""
        raise NotImplementedError

    def readable(self, files: LabelledFiles) -> list[tuple[Path, str, tuple[int, int]]]:
        """Keep the files whose header Pillow can read, with their size; the others go to bad_files."""
        readable = []
        for path, label in files:
            try:
                readable.append((path, label, read_image_size(path)))
            except READ_ERRORS as error:
                self.bad_files.add(path, error)
        if files and not readable:
            raise ConfigurationError(
                f"None of the {len(files)} image files can be read; the first is {files[0][0]}. "
                "Check the data paths (data.root)."
            )
        return readable

    def assign_splits(
        self, labels: Mapping[str, np.ndarray], val_fraction: float, test_fraction: float, seed: int
    ) -> dict[str, tuple[str, np.ndarray]]:
        """Return, for train/val/test, the source its images come from and their indices in it."""
        if "all" in labels:
            indices = stratified_split(labels["all"], val_fraction, test_fraction, seed, self._class_names)
            return {split: ("all", indices[split]) for split in SPLITS}
        splits = {name: (name, np.arange(len(labels[name]))) for name in SPLITS if name in labels}
        if "val" not in labels:
            check_fraction("val_fraction", val_fraction)
            held_out = split_by_class(labels["train"], {"val": val_fraction}, seed, self._class_names)
            splits["train"] = ("train", held_out["train"])
            splits["val"] = ("train", held_out["val"])
        if "test" not in labels:
            splits["test"] = splits["val"]
        return splits

    @property
    def class_names(self) -> list[str]:
        return self._class_names

    def typical_image_side(self) -> float:
        return float(np.median(self.split_files["train"][2].min(axis=1)))

    def training_labels(self) -> np.ndarray:
        return self.split_files["train"][1]

    def make_datasets(self, train_transform, eval_transform) -> dict[str, ImageFileDataset]:
        transforms = {"train": train_transform, "val": eval_transform, "test": eval_transform}
        datasets = {
            split: ImageFileDataset(
                *self.split_files[split], transform=transforms[split], bad_files=self.bad_files
            )
            for split in SPLITS
            if split != "test" or not self.test_is_val
        }
        if self.test_is_val:
            datasets["test"] = datasets["val"]
        if self.cache:
            held = sum(dataset.cache_images() for dataset in {id(d): d for d in datasets.values()}.values())
            self.bad_files.report("when caching images")
            log.info(
                "Cached %d decoded images in memory (%.1f MB).", sum(map(len, datasets.values())), held / 1e6
            )
        return datasets
