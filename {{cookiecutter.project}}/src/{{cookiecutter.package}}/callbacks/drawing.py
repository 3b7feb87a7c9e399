"""The pictures of a run: confusion matrices, image grids, learning curves and feature maps, each a
matplotlib Figure made by pictures.new_figure (see there for sizes and layout)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..pictures import DPI, new_figure, place_axes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Class names are written on the confusion matrix's axes up to this many classes (indices beyond),
# counts in its cells up to CELL_TEXT_CLASSES (beyond, the most confused pairs are listed beside it).
NAMED_AXES_CLASSES = 40
CELL_TEXT_CLASSES = 20
MOST_CONFUSED_PAIRS = 15
# Pixels per image tile in image grids: 8x8 digits and 224 px photos alike are shown at 112 px, with
# room for a caption above each.
TILE = 112
CAPTION = 30
GAP = 8
TITLE = 40


def confusion_matrix_figure(counts: np.ndarray, class_names: Sequence[str], title: str) -> Figure:
    """Counts (rows: true class, columns: predicted) beside the row-normalised matrix (recall per class),
    right answers in blue and errors in red.

    Up to CELL_TEXT_CLASSES classes each cell shows its value; beyond, the most confused pairs are
    listed by name on the right. Beyond NAMED_AXES_CLASSES the axes show indices instead of names.
    """
    counts = np.asarray(counts, dtype=np.int64)
    classes = len(class_names)
    normalised = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    named = classes <= NAMED_AXES_CLASSES
    ticks = list(range(classes)) if named else list(range(0, classes, math.ceil(classes / 20)))
    labels = [str(class_names[i]) if named else str(i) for i in ticks]
    rotate = max(map(len, labels)) > 3
    # Room for the tick labels: rotated names below, names left of the matrices.
    label_room = float(np.clip(0.35 + 0.065 * max(map(len, labels)), 0.6, 2.0))
    side = float(np.clip(0.28 * classes, 3.5, 9.0))
    bottom, top = (label_room if rotate else 0.6) + 0.1, 0.75
    # Without counts in the cells, the errors that matter most are listed by name beside the matrices.
    listed = classes > CELL_TEXT_CLASSES
    list_width = 4.2 if listed else 0.0
    width = 2 * (label_room + side) + 0.3 + list_width
    figure = new_figure(width, bottom + side + top)
    total = int(counts.sum())
    figure.suptitle(f"{title}: {total} images, accuracy {np.trace(counts) / max(total, 1):.4f}", y=0.985)
    for index, (values, label) in enumerate(((counts, "counts"), (normalised, "row-normalised (recall)"))):
        axes = place_axes(figure, label_room + index * (label_room + side), bottom, side, side)
        colours, darkness = _matrix_colours(values)
        axes.imshow(colours, interpolation="nearest", aspect="auto")
        axes.set_title(label, fontsize=10)
        axes.set_xlabel("predicted", fontsize=9)
        axes.set_ylabel("true", fontsize=9)
        axes.set_xticks(ticks, labels, rotation=90 if rotate else 0)
        axes.set_yticks(ticks, labels)
        axes.tick_params(labelsize=8 if classes <= 20 else 6, length=2)
        if classes <= CELL_TEXT_CLASSES:
            for row, column in zip(*np.nonzero(values), strict=True):  # blank cells let errors stand out
                value = values[row, column]
                axes.text(
                    column,
                    row,
                    f"{value:d}" if values is counts else f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if darkness[row, column] > 0.55 else "black",
                )
    if listed:
        lines = [
            f"{count:>5}  {class_names[true]} -> {class_names[predicted]}"
            for true, predicted, count in most_confused_pairs(counts, MOST_CONFUSED_PAIRS)
        ]
        text = "most confused (true -> predicted)\n\n" + ("\n".join(lines) or "no errors")
        figure.text(
            1 - (list_width - 0.1) / width,
            (bottom + side) / (bottom + side + top),
            text,
            va="top",
            family="monospace",
            fontsize=8,
        )
    return figure


def _matrix_colours(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RGB cells: the diagonal in blues scaled to its largest value, errors in reds scaled to the
    largest error (so that a single mistake among hundreds of right answers still shows), zeros white.
    Also each cell's colour strength (0-1), for the colour of its text."""
    from matplotlib import colormaps

    diagonal = np.eye(len(values), dtype=bool)
    right = np.where(diagonal, values, 0) / max(float(np.max(np.where(diagonal, values, 0))), 1e-12)
    wrong = np.where(diagonal, 0, values)
    wrong = np.where(wrong > 0, 0.3 + 0.7 * wrong / max(float(wrong.max()), 1e-12), 0.0)
    strength = np.where(diagonal, right, wrong)
    colours = np.where(
        diagonal[..., None], colormaps["Blues"](right)[..., :3], colormaps["Reds"](wrong)[..., :3]
    )
    colours[values == 0] = 1.0
    return colours, strength


def most_confused_pairs(counts: np.ndarray, number: int) -> list[tuple[int, int, int]]:
    """The `number` largest off-diagonal cells as (true class, predicted class, count), largest first."""
    errors = np.array(counts, dtype=np.int64)
    np.fill_diagonal(errors, 0)
    order = np.argsort(errors, axis=None, kind="stable")[::-1][:number]
    cells = zip(*np.unravel_index(order, errors.shape), strict=True)
    return [(int(i), int(j), int(errors[i, j])) for i, j in cells if errors[i, j] > 0]


def _tile(image: np.ndarray) -> np.ndarray:
    """An image (H, W, 3 uint8) scaled to fit TILE x TILE: small ones by whole pixels, so they stay sharp."""
    from PIL import Image

    height, width = image.shape[:2]
    scale = TILE / max(height, width)
    size = (max(round(width * scale), 1), max(round(height * scale), 1))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(image).resize(size, resample))


def _grid(
    tiles: list[list[np.ndarray]], captions: list[list[str]], colours: list[list[str]], title: str
) -> Figure:
    """One picture of tiles in rows, each TILE px with its caption above in its colour, shown pixel
    for pixel in a single axes (one axes per tile would cost ten times the time)."""
    rows, columns = len(tiles), max(len(row) for row in tiles)
    columns_shown = max(columns, 4)  # room for the title above a single image
    cell_width, cell_height = TILE + GAP, TILE + CAPTION
    canvas = np.full((rows * cell_height, columns_shown * cell_width, 3), 255, np.uint8)
    for row, row_tiles in enumerate(tiles):
        for column, tile in enumerate(row_tiles):
            y, x = row * cell_height + CAPTION, column * cell_width + GAP // 2
            canvas[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    height, width = canvas.shape[0] + TITLE, canvas.shape[1]
    figure = new_figure(width / DPI, height / DPI)
    axes = figure.add_axes((0, 0, 1, canvas.shape[0] / height))
    axes.imshow(canvas, interpolation="nearest")
    axes.axis("off")
    figure.suptitle(title, fontsize=10, y=1 - 8 / height, va="top", wrap=True)
    for row, (row_captions, row_colours) in enumerate(zip(captions, colours, strict=True)):
        for column, (caption, colour) in enumerate(zip(row_captions, row_colours, strict=True)):
            x, y = column * cell_width + GAP // 2 + TILE / 2, row * cell_height + CAPTION - 6
            axes.text(x, y, caption, ha="center", va="bottom", fontsize=7, color=colour)
    return figure


def image_grid_figure(
    images: np.ndarray, captions: Sequence[str], correct: Sequence[bool], title: str, columns: int = 8
) -> Figure:
    """Images (N, H, W, 3 uint8) in a grid, each captioned, green when right and red when wrong."""
    colours = ["tab:green" if right else "tab:red" for right in correct]

    def in_rows(items: Sequence) -> list[list]:
        return [list(items[start : start + columns]) for start in range(0, max(len(items), 1), columns)]

    return _grid(in_rows([_tile(image) for image in images]), in_rows(captions), in_rows(colours), title)


def curves_figure(
    epochs: Sequence[Mapping[str, float]], learning_rates: Mapping[str, Sequence[tuple[int, float]]]
) -> Figure:
    """Loss and accuracy per epoch (train and val) and each parameter group's learning rate per step."""
    figure = new_figure(13.5, 3.8)
    loss, accuracy, rate = figure.subplots(1, 3)
    figure.subplots_adjust(left=0.05, right=0.99, bottom=0.14, top=0.91, wspace=0.22)
    for axes, metric in ((loss, "loss"), (accuracy, "acc")):
        for stage in ("train", "val"):
            name = f"{stage}/{metric}"
            points = [(row["epoch"], row[name]) for row in epochs if name in row]
            if points:
                axes.plot(*zip(*points, strict=True), marker="o", markersize=3, label=stage)
        axes.set_title(metric)
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
        axes.legend()
    # Groups with the same rate at every step (e.g. with and without weight decay) share one line.
    same: dict[tuple, list[str]] = {}
    for name, points in learning_rates.items():
        if points:
            same.setdefault(tuple(points), []).append(name)
    for points, names in same.items():
        rate.plot(*zip(*points, strict=True), label=", ".join(names))
    rate.set_title("learning rate")
    rate.set_xlabel("step")
    rate.grid(alpha=0.3)
    if same:
        rate.legend(fontsize=7)
    return figure


def feature_maps_figure(
    activations: np.ndarray, layer: str, channels: int = 8, inputs: np.ndarray | None = None
) -> Figure:
    """For each image (rows; the image itself first when `inputs`, N x H x W x 3 uint8, are given),
    its `channels` most active channels of one layer (N, C, H, W) as heat maps (viridis, each scaled
    to its own range)."""
    from matplotlib import colormaps

    colour = colormaps["viridis"]
    images, available = activations.shape[:2]
    channels = min(channels, available)
    rows, names = [], []
    for row in range(images):
        strongest = np.argsort(activations[row].mean(axis=(1, 2)))[::-1][:channels]
        tiles = []
        for channel in strongest:
            values = activations[row, channel]
            low, high = float(values.min()), float(values.max())
            scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
            tiles.append(_tile((colour(scaled)[..., :3] * 255).astype(np.uint8)))
        labels = [f"channel {c}" for c in strongest]
        if inputs is not None:
            tiles, labels = [_tile(inputs[row]), *tiles], ["input", *labels]
        rows.append(tiles)
        names.append(labels)
    height, width = activations.shape[2:]
    title = f"{layer}: the {channels} most active of {available} channels ({height}x{width})"
    return _grid(rows, names, [["black"] * len(row) for row in names], title)
