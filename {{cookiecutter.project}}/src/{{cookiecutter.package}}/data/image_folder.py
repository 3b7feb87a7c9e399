"""Images sorted into one folder per class, the layout of torchvision's ImageFolder.

Either split by folders,                 or one set of class folders split by fractions:
    root/train/<class>/<image>               root/<class>/<image>
    root/val/<class>/<image>    (optional)
    root/test/<class>/<image>   (optional)
Class names are the folder names. Images may sit in subfolders of a class folder. Hidden files and
folders (`.DS_Store`, `._photo.jpg`) and files without an image extension are ignored; extensions
match in any case (`.JPG`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .files import SPLITS, ImageFilesDataModule, LabelledFiles
from .images import IMAGE_EXTENSIONS, is_image_file

log = logging.getLogger(__name__)


def visible_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_class_folders(folder: Path) -> LabelledFiles:
    """Return (path, class name) for every image in folder/<class>/..., sorted; clear errors when empty."""
    classes = visible_folders(folder)
    if not classes:
        raise ConfigurationError(
            f"{folder} has no class folders. Put each class's images in a folder named after the class: "
            f"{folder}/<class name>/<image file>."
        )
    files: LabelledFiles = []
    ignored = 0
    for class_folder in classes:
        found = []
        for directory, subfolders, names in os.walk(class_folder, followlinks=True):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            for name in sorted(names):
                if is_image_file(name):
                    found.append(Path(directory) / name)
                else:
                    ignored += not name.startswith(".")
        if not found:
            raise ConfigurationError(
                f"The class folder {class_folder} holds no images (extensions {', '.join(IMAGE_EXTENSIONS)}, "
                "in any case). Add its images or remove the folder."
            )
        files += [(path, class_folder.name) for path in found]
    if ignored:
        log.info("Ignored %d file(s) under %s without an image extension.", ignored, folder)
    return files


class ImageFolderDataModule(ImageFilesDataModule):
    """Class folders under `root`, split by train/val/test folders or by fractions (see module docs).

    Other arguments are those of ImageFilesDataModule and ClassificationDataModule.
    """

    def __init__(self, root: str | Path, **kwargs: Any) -> None:
        self.root = Path(root).expanduser().absolute()
        super().__init__(**kwargs)

    def find_images(self) -> dict[str, LabelledFiles]:
        if not self.root.is_dir():
            raise ConfigurationError(
                f"data.root={str(self.root)!r} is not a folder. Point data.root at a folder of class "
                "folders (<root>/<class>/<image>) or of train/, val/ and test/ folders of class folders."
            )
        folders = {folder.name: folder for folder in visible_folders(self.root)}
        if "train" not in folders:
            return {"all": scan_class_folders(self.root)}
        others = sorted(set(folders) - set(SPLITS))
        if others:
            raise ConfigurationError(
                f"data.root={str(self.root)!r} has a train/ folder, so its folders are read as splits "
                f"(train, val, test), but it also holds {others}. Move those into the splits' folders, "
                "or rename train/ if it is a class."
            )
        return {split: scan_class_folders(folders[split]) for split in SPLITS if split in folders}
