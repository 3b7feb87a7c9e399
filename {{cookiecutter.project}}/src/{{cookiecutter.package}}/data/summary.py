"""What a dataset holds, as rich tables: images per class and split, and image sizes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from rich.table import Table

# The most common class with this many times the images of the rarest is worth a warning.
IMBALANCE_RATIO = 3.0


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)


def class_count_table(
    class_names: Sequence[str], labels_by_split: Mapping[str, np.ndarray], max_rows: int | None = 20
) -> Table:
    """Images per class (rows) and split (columns). Beyond `max_rows` classes, only the rarest and the
    most common in training are shown."""
    counts = {split: class_counts(labels, len(class_names)) for split, labels in labels_by_split.items()}
    table = Table(title="Images per class", title_justify="left")
    table.add_column("class")
    for split in counts:
        table.add_column(split, justify="right")
    rows = list(range(len(class_names)))
    hidden = 0
    if max_rows is not None and len(rows) > max_rows:
        by_count = sorted(rows, key=lambda index: (counts["train"][index], index))
        hidden = len(rows) - max_rows
        rows = [*by_count[: max_rows // 2], -1, *by_count[-(max_rows - max_rows // 2) :]]
    for index in rows:
        if index < 0:
            table.add_row(f"... {hidden} more classes", *["" for _ in counts], style="dim")
        else:
            table.add_row(class_names[index], *[str(c[index]) for c in counts.values()])
    table.add_section()
    table.add_row(f"{len(class_names)} classes", *[str(int(c.sum())) for c in counts.values()], style="bold")
    return table


def imbalance_message(class_names: Sequence[str], train_labels: np.ndarray) -> str | None:
    """Say which classes are rarest and most common in training when they differ IMBALANCE_RATIO-fold."""
    counts = class_counts(train_labels, len(class_names))
    rarest, most_common = int(np.argmin(counts)), int(np.argmax(counts))
    if counts[most_common] < IMBALANCE_RATIO * max(counts[rarest], 1):
        return None
    return (
        f"The training classes are imbalanced: {class_names[most_common]!r} has {counts[most_common]} "
        f"images, {class_names[rarest]!r} {counts[rarest]}. Accuracy will favour the common classes; "
        "data.weighted_sampler=true draws every class equally often."
    )


def size_statistics_table(sizes_by_split: Mapping[str, np.ndarray]) -> Table:
    """Min, median and max width and height per split; `sizes` are (N, 2) arrays of (width, height)."""
    table = Table(title="Image sizes (px)", title_justify="left")
    for column in ("split", "images", "width min", "median", "max", "height min", "median", "max"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, sizes in sizes_by_split.items():
        sizes = np.asarray(sizes).reshape(-1, 2)
        if not len(sizes):
            table.add_row(split, "0", *["-"] * 6)
            continue
        stats = [f"{f(sizes[:, axis]):g}" for axis in (0, 1) for f in (np.min, np.median, np.max)]
        table.add_row(split, str(len(sizes)), *stats)
    return table
