"""Data modules: where images and labels come from, and how they become batches."""

from .base import ClassificationDataModule
from .digits import DigitsDataModule

__all__ = ["ClassificationDataModule", "DigitsDataModule"]
