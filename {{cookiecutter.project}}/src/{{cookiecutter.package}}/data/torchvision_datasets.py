"""Classification datasets of torchvision (CIFAR10, MNIST, ...) by name, from files on disk.

Nothing is downloaded unless `download=True`. Validation images are held out of the training set by
`val_fraction` (stratified, fixed by `split_seed`) unless the dataset has a validation split of its own.
With `folds`, the training set (and the validation split, when the dataset has one) is cut into that many
stratified folds, fold `fold` for validation; the test split is the dataset's own, as without folds.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import numpy as np
import torchvision.datasets
from PIL import Image
from torch.utils.data import ConcatDataset, Dataset

from ..errors import ConfigurationError
from .base import ClassificationDataModule
from .datasets import LabelledImageDataset
from .images import to_rgb
from .splits import check_fold, check_fraction, cross_validation_split, log_fold, split_by_class

# The constructor arguments that select each split of the datasets we support.
SPLIT_ARGUMENTS: dict[str, dict[str, dict[str, Any]]] = {
    **{
        name: {"train": {"train": True}, "test": {"train": False}}
        for name in ("CIFAR10", "CIFAR100", "MNIST", "FashionMNIST", "KMNIST", "QMNIST", "USPS")
    },
    **{
        name: {"train": {"split": "train"}, "test": {"split": "test"}}
        for name in ("SVHN", "STL10", "Food101", "GTSRB")
    },
    **{
        name: {"train": {"split": "train"}, "val": {"split": "val"}, "test": {"split": "test"}}
        for name in ("Flowers102", "DTD", "FGVCAircraft")
    },
    "Country211": {"train": {"split": "train"}, "val": {"split": "valid"}, "test": {"split": "test"}},
    "OxfordIIITPet": {"train": {"split": "trainval"}, "test": {"split": "test"}},
    "Imagenette": {"train": {"split": "train"}, "test": {"split": "val"}},
}
SPLIT_ARGUMENTS = {
    name: splits for name, splits in SPLIT_ARGUMENTS.items() if hasattr(torchvision.datasets, name)
}


def expected_location(dataset_class: type, root: Path) -> Path:
    """Where torchvision looks for the files of `dataset_class` under `root`."""
    if issubclass(dataset_class, torchvision.datasets.MNIST):
        return root / dataset_class.__name__ / "raw"
    if hasattr(dataset_class, "base_folder"):
        return root / dataset_class.base_folder
    return root


def dataset_labels(dataset: Dataset) -> np.ndarray:
    """The labels of a torchvision dataset, from its attributes when it has them (no decoding)."""
    for attribute in ("targets", "labels", "_labels"):
        if hasattr(dataset, attribute):
            return np.asarray(getattr(dataset, attribute), dtype=np.int64)
    if hasattr(dataset, "_samples"):
        return np.array([sample[1] for sample in dataset._samples], dtype=np.int64)
    return np.array([dataset[index][1] for index in range(len(dataset))], dtype=np.int64)


class TorchvisionImages(LabelledImageDataset):
    """The images `indices` of a torchvision dataset, as RGB, through our transform."""

    def __init__(self, dataset: Dataset, indices: np.ndarray, labels: np.ndarray, transform=None) -> None:
        super().__init__(labels, transform)
        self.dataset = dataset
        self.indices = np.asarray(indices)

    def load_image(self, index: int) -> Image.Image:
        image, _ = self.dataset[int(self.indices[index])]
        return to_rgb(image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image)))


class TorchvisionDataModule(ClassificationDataModule):
    """A torchvision classification dataset by `name` (see SPLIT_ARGUMENTS), read from `root`.

    Other arguments are those of ClassificationDataModule.
    """

    def __init__(
        self,
        name: str,
        root: str | Path = "data",
        download: bool = False,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        folds: int | None = None,
        fold: int = 0,
        image_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(image_size=image_size, **kwargs)
        check_fold(folds, fold)
        if name not in SPLIT_ARGUMENTS:
            close = difflib.get_close_matches(name, SPLIT_ARGUMENTS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(
                f"data.name={name!r} is not a torchvision dataset we support.{hint} Supported: "
                f"{', '.join(sorted(SPLIT_ARGUMENTS))}; for other images use data=image_folder or data=csv."
            )
        self.name = name
        self.root = Path(root).expanduser()
        self.download = download
        splits = {
            split: self.load(split_arguments) for split, split_arguments in SPLIT_ARGUMENTS[name].items()
        }
        labels = {split: dataset_labels(dataset) for split, dataset in splits.items()}
        self._class_names = self.find_class_names(splits["train"], int(labels["train"].max()) + 1)
        self.split_indices: dict[str, tuple[str, np.ndarray]] = {
            split: (split, np.arange(len(split_labels))) for split, split_labels in labels.items()
        }
        if folds is not None:
            if "val" in splits:  # the folds are cut from train and val together, held as one dataset
                splits["train"] = ConcatDataset([splits.pop("train"), splits.pop("val")])
                labels["train"] = np.concatenate([labels.pop("train"), labels.pop("val")])
            parts = cross_validation_split(labels["train"], folds, fold, split_seed, self._class_names)
            self.split_indices = {split: ("train", indices) for split, indices in parts.items()}
            self.split_indices["test"] = ("test", np.arange(len(labels["test"])))
            log_fold(folds, fold, {split: len(indices) for split, (_, indices) in self.split_indices.items()})
        elif "val" not in splits:
            check_fraction("val_fraction", val_fraction)
            parts = split_by_class(labels["train"], {"val": val_fraction}, split_seed, self._class_names)
            self.split_indices.update({split: ("train", indices) for split, indices in parts.items()})
        self.sources, self.labels = splits, labels

    def load(self, split_arguments: dict[str, Any]) -> Dataset:
        """Construct the torchvision dataset for one split; missing files become a ConfigurationError."""
        dataset_class = getattr(torchvision.datasets, self.name)
        where = expected_location(dataset_class, self.root)
        try:
            return dataset_class(root=str(self.root), download=self.download, **split_arguments)
        except (RuntimeError, OSError) as error:
            if self.download:
                raise ConfigurationError(
                    f"Could not download {self.name} into {where} ({error}). Without network access, copy "
                    f"its files there from a machine that has one (data.download=true fetches them)."
                ) from error
            raise ConfigurationError(
                f"{self.name} was not found in {where} (data.root={str(self.root)!r}): torchvision says "
                f"{str(error)!r}. Put the dataset's files there, or set data.download=true to let "
                "torchvision download them (needs network access)."
            ) from error

    @staticmethod
    def find_class_names(dataset: Dataset, num_classes: int) -> list[str]:
        names = getattr(dataset, "classes", None)
        if names is None or len(names) != num_classes:
            return [str(label) for label in range(num_classes)]
        return [str(name[0] if isinstance(name, (tuple, list)) else name) for name in names]

    @property
    def class_names(self) -> list[str]:
        return self._class_names

    def training_labels(self) -> np.ndarray:
        source, indices = self.split_indices["train"]
        return self.labels[source][indices]

    def typical_image_side(self) -> float:
        dataset = self.sources["train"]
        sample = np.linspace(0, len(dataset) - 1, num=min(len(dataset), 32), dtype=np.int64)
        return float(np.median([min(dataset[int(index)][0].size) for index in sample]))

    def make_datasets(self, train_transform, eval_transform) -> dict[str, TorchvisionImages]:
        transforms = {"train": train_transform, "val": eval_transform, "test": eval_transform}
        return {
            split: TorchvisionImages(
                self.sources[source], indices, self.labels[source][indices], transforms[split]
            )
            for split, (source, indices) in self.split_indices.items()
        }
