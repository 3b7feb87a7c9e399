"""Look at a dataset before training on it: class counts, image sizes and a grid of training samples.

    python -m {{ cookiecutter.package }}.data.report data=image_folder data.root=/path/to/images

takes the same overrides as train.py (data=..., data.*, model.backbone=...), prints the images per
class and split and the image sizes as tables, and saves samples.png: a row of training samples per
class, as the model sees them after the train transforms (normalisation undone for display). It
writes to <paths.log_dir>/report/<time>/ and prints that path.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import rich
import rich.console
import timm
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, open_dict
from PIL import Image, ImageDraw

from ..errors import ConfigurationError, instantiate_checked
from ..hydra_compat import VERSION_BASE
from ..models.backbone import check_backbone_name, trains_from_scratch
from ..run.command import run_command
from .base import ClassificationDataModule
from .summary import size_statistics_table
from .transforms import unnormalise

SAMPLES_PER_CLASS = 8
MAX_CLASSES_IN_GRID = 32
# Sizes are read from every file header for image files; other datasets decode at most this many.
MAX_SIZES_DECODED = 2000
MIN_TILE = 96  # small inputs are enlarged (nearest neighbour) so that one can see them
LABEL_WIDTH = 140


def find_config_dir() -> Path:
    """The project's configs/: beside src/ for an editable install, else in the current directory."""
    for candidate in (Path(__file__).resolve().parents[3] / "configs", Path.cwd() / "configs"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise ConfigurationError("No configs/train.yaml found; run the report from the project's directory.")


def compose_config(overrides: list[str]) -> DictConfig:
    """Compose configs/train.yaml with command-line style overrides, writing to a new report directory."""
    try:
        with initialize_config_dir(config_dir=str(find_config_dir()), **VERSION_BASE):
            config = compose(config_name="train", overrides=overrides)
    except HydraException as error:
        raise ConfigurationError(str(error)) from error
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    with open_dict(config):
        config.paths.output_dir = str(Path(config.paths.log_dir) / "report" / stamp)
    return config


def image_sizes(dataset) -> np.ndarray:
    """(width, height) of the images of `dataset`, all of them or an even sample when decoding."""
    count = len(dataset)
    if not hasattr(dataset, "sizes") and count > MAX_SIZES_DECODED:
        indices = np.linspace(0, count - 1, num=MAX_SIZES_DECODED, dtype=np.int64)
    else:
        indices = np.arange(count)
    return np.array([dataset.image_size(int(index)) for index in indices]).reshape(-1, 2)


def sample_grid(datamodule: ClassificationDataModule) -> Image.Image:
    """One row per class (at most MAX_CLASSES_IN_GRID) of training samples after the train transform."""
    dataset = datamodule.datasets["train"]
    side = datamodule.preprocessing["input_size"][-1]
    tile = max(side, MIN_TILE)
    classes = list(range(min(datamodule.num_classes, MAX_CLASSES_IN_GRID)))
    grid = Image.new(
        "RGB", (LABEL_WIDTH + SAMPLES_PER_CLASS * (tile + 2), len(classes) * (tile + 2)), "white"
    )
    draw = ImageDraw.Draw(grid)
    for row, label in enumerate(classes):
        top = row * (tile + 2)
        draw.text((4, top + tile // 2 - 6), datamodule.class_names[label][:20], fill="black")
        for column, index in enumerate(np.flatnonzero(dataset.labels == label)[:SAMPLES_PER_CLASS]):
            image, _ = dataset[int(index)]
            pixels = unnormalise(image[None], datamodule.preprocessing)[0]
            shown = Image.fromarray(pixels).resize((tile, tile), Image.Resampling.NEAREST)
            grid.paste(shown, (LABEL_WIDTH + column * (tile + 2), top))
    return grid


def datamodule_as_trained(config: DictConfig) -> ClassificationDataModule:
    """The data module with the preprocessing train.py would resolve for it (input size included),
    from the backbone's name rather than a built model."""
    datamodule: ClassificationDataModule = instantiate_checked(config.data)
    check_backbone_name(config.model.backbone)
    pretrained_cfg = timm.models.get_pretrained_cfg(config.model.backbone)
    datamodule.resolve_preprocessing(
        config.model.backbone,
        from_scratch=trains_from_scratch(config.model),
        fixed_input_size=bool(getattr(pretrained_cfg, "fixed_input_size", False)),
    )
    return datamodule


def report(overrides: list[str]) -> Path:
    """Print the tables and save samples.png for the data the overrides select; return the PNG's path."""
    config = compose_config(overrides)
    datamodule = datamodule_as_trained(config)
    datamodule.batch_size = 1  # the report needs no full batch
    datamodule.setup("fit")  # prints the images per class and split
    rich.print(size_statistics_table({split: image_sizes(d) for split, d in datamodule.datasets.items()}))
    output_dir = Path(config.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "samples.png"
    sample_grid(datamodule).save(path)
    shown = min(datamodule.num_classes, MAX_CLASSES_IN_GRID)
    rich.console.Console(soft_wrap=True).print(
        f"Training samples ({shown} of {datamodule.num_classes} classes, train transforms applied, "
        f"augment={datamodule.augment}): {path.resolve()}",
        highlight=False,
    )
    return path


def main() -> None:
    run_command(report, sys.argv[1:])


if __name__ == "__main__":
    main()
