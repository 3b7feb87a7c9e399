"""Data modules: where images and labels come from, and how they become batches."""

from .base import ClassificationDataModule
from .csv_files import CsvDataModule
from .digits import DigitsDataModule
from .image_folder import ImageFolderDataModule
from .torchvision_datasets import TorchvisionDataModule

__all__ = [
    "ClassificationDataModule",
    "CsvDataModule",
    "DigitsDataModule",
    "ImageFolderDataModule",
    "TorchvisionDataModule",
]
