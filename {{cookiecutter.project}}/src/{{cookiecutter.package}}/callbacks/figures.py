"""What the logging callbacks share: files in the run directory, and pictures sent to every logger."""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)


def write_atomically(path: Path, content: bytes | str) -> Path:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content.encode() if isinstance(content, str) else content)
    os.replace(temporary, path)
    return path


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


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


def unnormalise(images: torch.Tensor, preprocessing: dict[str, Any] | None) -> np.ndarray:
    """Model inputs (N, C, H, W), normalised with the model's mean/std, back as a person sees them:
    (N, H, W, 3) uint8."""
    images = images.detach().float().cpu()
    if preprocessing:
        mean = torch.tensor(preprocessing["mean"]).view(1, -1, 1, 1)
        std = torch.tensor(preprocessing["std"]).view(1, -1, 1, 1)
        images = images * std + mean
    images = images.clamp(0, 1).mul(255).round().to(torch.uint8)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return images.permute(0, 2, 3, 1).numpy()


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
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=figure.dpi)
        png = buffer.getvalue()
        path = write_atomically(self.dirpath / f"{name}.png", png)
        log.debug("Wrote %s", path)
        log_image(trainer, f"plots/{name}", png)
        self.written[label] = path
        return path

    def save_csv(self, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
        path = write_atomically(self.dirpath / f"{name}.csv", csv_text(header, rows))
        log.debug("Wrote %s", path)
        return path

    def class_names(self, pl_module: LightningModule) -> list[str]:
        return [str(name) for name in getattr(pl_module, "class_names", [])]
