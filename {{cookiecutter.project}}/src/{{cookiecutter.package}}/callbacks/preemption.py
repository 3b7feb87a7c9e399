"""A checkpoint when the run is told to stop (SIGTERM: what clusters send before preempting a job)."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException


class CheckpointOnSigterm(Checkpoint):
    """Save `<dirpath>/<filename>.ckpt` (last.ckpt) when Lightning stops training on SIGTERM.

    Lightning's signal handler lets the current batch finish, then raises SIGTERMException; the
    checkpoint is taken there, between two batches, so the run resumes exactly. Other exceptions
    (a bug, running out of memory, Ctrl-C) can strike mid-step, so they never overwrite last.ckpt.
    (Not Lightning's OnExceptionCheckpoint: fit() would then resume from the newest checkpoint in
    the directory whenever no ckpt_path is given, and delete the file after every finished run.)
    """

    def __init__(self, dirpath: str, filename: str = "last") -> None:
        self.ckpt_path = str(Path(dirpath) / f"{filename}.ckpt")

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):
            trainer.save_checkpoint(self.ckpt_path)
