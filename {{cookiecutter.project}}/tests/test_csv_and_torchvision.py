"""CSV-labelled images and torchvision datasets read from real files on disk, never downloaded."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from {{ cookiecutter.package }}.data import CsvDataModule, TorchvisionDataModule
from {{ cookiecutter.package }}.errors import ConfigurationError

from conftest import use_backbone_preprocessing, write_csv, write_idx, write_images


def test_one_csv_is_split_with_paths_relative_to_its_folder_and_labels_as_class_names(tmp_path):
    images = write_images(tmp_path / "pictures", 30)
    labels = ["10", "2", "7"]  # numbers sort by value
    csv_path = write_csv(
        tmp_path / "labels.csv", [(f"pictures/{p.name}", labels[i % 3]) for i, p in enumerate(images)]
    )
    datamodule = CsvDataModule(csv_path=csv_path, val_fraction=0.2, test_fraction=0.2)
    assert datamodule.class_names == ["2", "7", "10"]
    splits = [set(map(str, datamodule.split_files[split][0])) for split in ("train", "val", "test")]
    assert sum(map(len, splits)) == len(set.union(*splits)) == 30
    train_paths, train_labels, _ = datamodule.split_files["train"]
    expected = {str(p): labels[i % 3] for i, p in enumerate(images)}
    assert all(
        datamodule.class_names[label] == expected[str(path)]
        for path, label in zip(train_paths, train_labels, strict=True)
    )


def test_csv_per_split_with_own_column_names_and_root(tmp_path):
    write_images(tmp_path / "data" / "img", 8)
    for split, names in (("train", range(0, 6)), ("val", range(6, 8))):
        write_csv(
            tmp_path / f"{split}.csv",
            [(f"img/image_{i:03d}.png", "cat" if i % 2 else "dog") for i in names],
            header=("file", "species"),
        )
    datamodule = CsvDataModule(
        csv_path={"train": tmp_path / "train.csv", "val": tmp_path / "val.csv"},
        root=tmp_path / "data",
        path_column="file",
        label_column="species",
        batch_size=2,
        image_size=8,
    )
    assert datamodule.class_names == ["cat", "dog"]
    assert [len(datamodule.split_files[split][0]) for split in ("train", "val", "test")] == [6, 2, 2]
    use_backbone_preprocessing(datamodule, "test_resnet")
    datamodule.setup("fit")
    images, _ = next(iter(datamodule.train_dataloader()))
    assert images.shape == (2, 3, 8, 8)


def test_csv_mistakes_fail_with_a_message_naming_them(tmp_path):
    write_images(tmp_path, 6)
    csv_path = write_csv(tmp_path / "labels.csv", [(f"image_{i:03d}.png", i % 2) for i in range(6)])
    with pytest.raises(
        ConfigurationError,
        match=re.escape("no column 'filename' (data.path_column); its columns are ['path', 'label']"),
    ):
        CsvDataModule(csv_path=csv_path, path_column="filename")
    with pytest.raises(ConfigurationError, match="is not a file"):
        CsvDataModule(csv_path=tmp_path / "missing.csv")
    with pytest.raises(ConfigurationError, match=r"Cannot read image .*gone\.png"):
        CsvDataModule(
            csv_path=write_csv(tmp_path / "gone.csv", [("gone.png", 0), ("image_000.png", 1)]),
            bad_files="error",
        )


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST"])
def test_mnist_format_files_load_with_a_stratified_val_split_and_rgb_batches(tmp_path, name):
    rng = np.random.default_rng(0)
    raw = tmp_path / "data" / name / "raw"
    for prefix, count in (("train", 200), ("t10k", 50)):
        labels = np.arange(count) % 10
        images = np.zeros((count, 28, 28), dtype=np.uint8)
        images[:, 4:24, 4:24] = rng.integers(100, 256, (count, 20, 20))
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    datamodule = TorchvisionDataModule(
        name=name, root=tmp_path / "data", val_fraction=0.1, batch_size=10, image_size=16
    )
    assert len(datamodule.class_names) == 10
    use_backbone_preprocessing(datamodule, "test_resnet")
    datamodule.setup("fit")
    sizes = {split: len(dataset) for split, dataset in datamodule.datasets.items()}
    assert sizes == {"train": 180, "val": 20, "test": 50}
    assert np.bincount(datamodule.datasets["val"].labels).tolist() == [2] * 10
    images, _ = next(iter(datamodule.val_dataloader()))
    assert images.shape == (10, 3, 16, 16)
    assert torch.equal(images[:, 0], images[:, 1])  # grey images became RGB


def test_a_missing_torchvision_dataset_says_where_to_put_its_files(tmp_path):
    with pytest.raises(ConfigurationError) as error:
        TorchvisionDataModule(name="CIFAR10", root=tmp_path / "data")
    message = str(error.value)
    assert str(tmp_path / "data" / "cifar-10-batches-py") in message and "data.download=true" in message
    with pytest.raises(ConfigurationError, match="Did you mean 'CIFAR10'"):
        TorchvisionDataModule(name="CIFAR-10", root=tmp_path)
