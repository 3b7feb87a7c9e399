"""The report task: look at a dataset before training on it (class counts, image sizes and a grid of
training samples as the model sees them). `python report.py --help`; it takes train.py's data and
model options."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import rich
from omegaconf import DictConfig
from PIL import Image, ImageDraw

from .atomic import write_atomically
from .data import ClassificationDataModule
from .data.summary import size_statistics_table
from .data.transforms import unnormalise
from .errors import instantiate_checked
from .models import backbone_preprocessing
from .models.network import check_backbone_name, trains_from_scratch
from .run.task import Run

SAMPLES_PER_CLASS = 8
MAX_CLASSES_IN_GRID = 32
# Sizes are read from every file header for image files; other datasets decode at most this many.
MAX_SIZES_DECODED = 2000
MIN_TILE = 96  # small inputs are enlarged (nearest neighbour) so that one can see them
LABEL_WIDTH = 140


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
    """The data module with the preprocessing train.py would decide for its model (input size
    included), from a weightless copy of the network (see models.preprocessing)."""
    check_backbone_name(config.model.backbone)
    datamodule: ClassificationDataModule = instantiate_checked(config.data, seed=config.seed)
    datamodule.use_preprocessing(
        backbone_preprocessing(
            config.model.backbone,
            datamodule.preprocessing_overrides,
            from_scratch=trains_from_scratch(config.model),
            typical_image_side=datamodule.typical_image_side,
        )
    )
    return datamodule


def report(config: DictConfig) -> dict[str, Any]:
    """Print the class counts and image sizes of the data, save samples.png; return the results."""
    with Run(config) as run:
        datamodule = datamodule_as_trained(config)
        datamodule.batch_size = 1  # the report needs no full batch
        datamodule.setup("fit")  # prints the images per class and split
        sizes = {split: image_sizes(dataset) for split, dataset in datamodule.datasets.items()}
        rich.print(size_statistics_table(sizes))
        run.save_config()
        png = io.BytesIO()
        sample_grid(datamodule).save(png, format="png")
        path = write_atomically(run.output_dir / "samples.png", png.getvalue())
        shown = min(datamodule.num_classes, MAX_CLASSES_IN_GRID)
        return run.finish(
            {
                "samples": str(path),
                "classes": list(datamodule.class_names),
                "images": {split: len(dataset) for split, dataset in datamodule.datasets.items()},
                "input_size": datamodule.preprocessing["input_size"],
            },
            title=f"Reported on the data ({shown} of {datamodule.num_classes} classes in the sample grid, "
            f"train transforms applied, augment={datamodule.augment})",
            paths={"training samples": path},
            metrics={},
        )
