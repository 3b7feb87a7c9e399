"""What the logging callbacks share: files in the run directory, and pictures sent to every logger."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from lightning.pytorch import Callback, LightningModule, Trainer

from ..atomic import csv_text, write_atomically
from ..pictures import figure_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)


def log_image(trainer: Trainer, key: str, png: bytes) -> None:
    """Hand a PNG to each logger that shows images: TensorBoard (add_image) and wandb (log_image)."""
    names = {type(logger).__name__: logger for logger in trainer.loggers}
    if "TensorBoardLogger" not in names and "WandbLogger" not in names:
        return
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    step = trainer.global_step
    if "TensorBoardLogger" in names:
        names["TensorBoardLogger"].experiment.add_image(key, np.asarray(image), step, dataformats="HWC")
    if "WandbLogger" in names:
        names["WandbLogger"].log_image(key=key, images=[image], step=step)


class RunFilesCallback(Callback):
    """A callback that writes files into `dirpath` (the run's plots/): PNGs, also sent to the loggers,
    and CSVs. Only the first process writes. `written` names each file for the run's summary;
    `results` is merged into results.json.

    Nothing is drawn under fast_dev_run, which writes no files (and must start as fast as it did).
    """

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.written: dict[str, Path] = {}
        self.results: dict[str, Any] = {}

    @staticmethod
    def writes_files(trainer: Trainer) -> bool:
        return trainer.is_global_zero and not trainer.fast_dev_run

    def save_figure(self, trainer: Trainer, figure: Figure, name: str, label: str) -> Path:
        """Write `figure` as <dirpath>/<name>.png, send it to the loggers as plots/<name>."""
        png = figure_png(figure)
        path = self._write_file(f"{name}.png", png)
        log_image(trainer, f"plots/{name}", png)
        self.written[label] = path
        return path

    def save_csv(self, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
        return self._write_file(f"{name}.csv", csv_text(header, rows))

    def _write_file(self, name: str, content: bytes | str) -> Path:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        path = write_atomically(self.dirpath / name, content)
        log.debug("Wrote %s", path)
        return path

    def class_names(self, pl_module: LightningModule) -> list[str]:
        return [str(name) for name in getattr(pl_module, "class_names", [])]
