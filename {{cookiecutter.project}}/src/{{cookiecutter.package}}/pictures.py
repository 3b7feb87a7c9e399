"""Figures for the pictures a person looks at (a run's plots, a sweep's plot): matplotlib without
pyplot (no GUI backend, no global state), imported only when a picture is drawn.

Sizes are fixed in inches at DPI, so a picture's size in pixels is known before it is drawn, and axes
are placed by hand: matplotlib's constrained layout costs more than the drawing itself.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of `width` x `height` inches at DPI."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI)


def place_axes(figure: Figure, left: float, bottom: float, width: float, height: float) -> Axes:
    """Axes at a position given in inches from the figure's lower left corner."""
    total_width, total_height = figure.get_size_inches()
    return figure.add_axes(
        (left / total_width, bottom / total_height, width / total_width, height / total_height)
    )


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes, at its own resolution."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi)
    return buffer.getvalue()
