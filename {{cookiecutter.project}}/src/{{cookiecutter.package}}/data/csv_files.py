"""Images listed in CSV files: one column of image paths, one of class labels.

One CSV is split into train/val/test by fractions; or give one CSV per split (train, and optionally
val and test). Paths are relative to `root`, by default the folder of the CSV that lists them.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .files import SPLITS, ImageFilesDataModule, LabelledFiles


def read_labelled_csv(
    csv_path: Path, root: Path | None, path_column: str, label_column: str
) -> LabelledFiles:
    """Return (image path, label) for every row of `csv_path`; paths are taken relative to `root`."""
    if not csv_path.is_file():
        raise ConfigurationError(f"data.csv_path: {str(csv_path)!r} is not a file.")
    root = csv_path.parent if root is None else root
    with csv_path.open(newline="", encoding="utf-8-sig") as file:  # -sig: a BOM written by Excel
        reader = csv.DictReader(file)
        columns = reader.fieldnames or []
        for key, column in (("path_column", path_column), ("label_column", label_column)):
            if column not in columns:
                raise ConfigurationError(
                    f"{csv_path} has no column {column!r} (data.{key}); its columns are {columns}."
                )
        files: LabelledFiles = []
        for line, row in enumerate(reader, start=2):
            path, label = (row[path_column] or "").strip(), (row[label_column] or "").strip()
            if not path or not label:
                raise ConfigurationError(
                    f"{csv_path}, line {line}: empty {path_column!r} or {label_column!r}."
                )
            files.append((root / path, label))
    if not files:
        raise ConfigurationError(f"{csv_path} lists no images.")
    return files


class CsvDataModule(ImageFilesDataModule):
    """Images and labels from CSV files (see module docs); class names are the labels, sorted.

    `csv_path` is one file, or a mapping of "train" (required), "val" and "test" to files.
    Other arguments are those of ImageFilesDataModule and ClassificationDataModule.
    """

    def __init__(
        self,
        csv_path: str | Path | Mapping[str, str | Path],
        root: str | Path | None = None,
        path_column: str = "path",
        label_column: str = "label",
        **kwargs: Any,
    ) -> None:
        self.csv_path = csv_path
        self.root = None if root is None else Path(root).expanduser().absolute()
        self.path_column = path_column
        self.label_column = label_column
        super().__init__(**kwargs)

    def find_images(self) -> dict[str, LabelledFiles]:
        if not isinstance(self.csv_path, Mapping):
            return {"all": self.read(self.csv_path)}
        unknown = sorted(set(self.csv_path) - set(SPLITS))
        if unknown or "train" not in self.csv_path:
            raise ConfigurationError(
                f"data.csv_path has the keys {sorted(self.csv_path)}: give one CSV file, or a CSV per "
                "split under train (required), val and test."
            )
        return {split: self.read(path) for split, path in self.csv_path.items() if path is not None}

    def read(self, csv_path: str | Path) -> LabelledFiles:
        return read_labelled_csv(
            Path(csv_path).expanduser().absolute(), self.root, self.path_column, self.label_column
        )
