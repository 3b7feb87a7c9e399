"""The picture of a sweep: its optimized metric against each swept parameter, the best job marked.

A figure made by pictures.new_figure (matplotlib without pyplot, imported only when drawing), the
panels placed by hand in inches.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..pictures import new_figure, place_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Inches: each panel, the room around them (tick labels and titles) and the panels in a row.
PANEL_WIDTH, PANEL_HEIGHT = 3.8, 2.8
LEFT, RIGHT, BOTTOM, TOP, GAP_X, GAP_Y = 0.8, 0.25, 0.9, 0.7, 0.75, 1.0
PANELS_PER_ROW = 3
# Positive numbers spanning more than this factor are shown on a log axis (learning rates, weight decay).
LOG_SPAN = 10
# Up to this many distinct numbers (a grid search) are each a tick, labelled like the override.
MAX_VALUE_TICKS = 8
LONGEST_CATEGORY = 18
NOT_SET = "(not set)"


def plot_file_name(metric: str) -> str:
    """'val/acc' -> 'summary_val_acc.png'."""
    return f"summary_{re.sub(r'[^A-Za-z0-9.-]+', '_', metric).strip('_.') or 'metric'}.png"


def as_numbers(values: Sequence[str | None]) -> list[float | None] | None:
    """The values as finite numbers (None stays None), or None when any is something else (a name,
    'true', 'null') or none is given."""
    numbers: list[float | None] = []
    for value in values:
        if value is None:
            numbers.append(None)
            continue
        try:
            number = float(value)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        numbers.append(number)
    return numbers if any(number is not None for number in numbers) else None


def sweep_figure(
    parameters: Mapping[str, Sequence[str | None]],
    values: Sequence[float],
    *,
    best: int,
    best_label: str,
    metric: str,
    title: str,
) -> Figure:
    """One panel per parameter: `values[i]` (the metric of job i) against `parameters[key][i]` (the
    value job i's override gave key, None where it gave none). Numbers go on a linear axis, or a log
    one when they are positive and span more than LOG_SPAN; anything else is a category, at positions
    in order of first appearance. Job `best` is a red star."""
    keys = list(parameters)
    columns = min(len(keys), PANELS_PER_ROW)
    rows = math.ceil(len(keys) / columns)
    width = LEFT + columns * PANEL_WIDTH + (columns - 1) * GAP_X + RIGHT
    height = BOTTOM + rows * PANEL_HEIGHT + (rows - 1) * GAP_Y + TOP
    figure = new_figure(width, height)
    figure.suptitle(title, fontsize=10, y=1 - 0.1 / height, va="top")
    for index, key in enumerate(keys):
        row, column = divmod(index, columns)
        left = LEFT + column * (PANEL_WIDTH + GAP_X)
        bottom = height - TOP - (row + 1) * PANEL_HEIGHT - row * GAP_Y
        axes = place_axes(figure, left, bottom, PANEL_WIDTH, PANEL_HEIGHT)
        draw_panel(axes, key, parameters[key], values, best, best_label)
        axes.set_ylabel(metric, fontsize=9)
    return figure


def draw_panel(
    axes: Axes, key: str, settings: Sequence[str | None], values: Sequence[float], best: int, best_label: str
) -> None:
    numbers = as_numbers(settings)
    if numbers is None:
        categories = list(dict.fromkeys(NOT_SET if setting is None else setting for setting in settings))
        positions: list[float | None] = [
            categories.index(NOT_SET if setting is None else setting) for setting in settings
        ]
        labels = [shorten(category) for category in categories]
        rotate = max(map(len, labels)) > 6 and len(labels) > 2
        axes.set_xticks(range(len(categories)), labels)
        if rotate:
            axes.tick_params(axis="x", labelrotation=30)
            for label in axes.get_xticklabels():
                label.set_horizontalalignment("right")
        axes.set_xlim(-0.5, len(categories) - 0.5)
    else:
        positions = numbers
        given = [number for number in numbers if number is not None]
        if min(given) > 0 and max(given) / min(given) > LOG_SPAN:
            axes.set_xscale("log")
        distinct = sorted(set(given))
        if len(distinct) <= MAX_VALUE_TICKS:  # a grid of values: a tick at each
            axes.set_xticks(distinct, [f"{number:g}" for number in distinct])
            axes.set_xticks([], minor=True)
    points = [(x, y) for x, y in zip(positions, values, strict=True) if x is not None]
    axes.scatter(*zip(*points, strict=True), s=28, color="tab:blue", alpha=0.8, zorder=2)
    if positions[best] is not None:
        axes.scatter(
            [positions[best]],
            [values[best]],
            s=220,
            marker="*",
            color="tab:red",
            edgecolors="black",
            linewidths=0.6,
            zorder=3,
            label=best_label,
        )
        axes.legend(fontsize=8, loc="best")
    axes.set_xlabel(key, fontsize=9)
    axes.tick_params(labelsize=8)
    axes.grid(alpha=0.3)


def shorten(label: str) -> str:
    return label if len(label) <= LONGEST_CATEGORY else label[: LONGEST_CATEGORY - 1] + "…"
