"""A checkpoint when the run is told to stop (SIGTERM: what clusters send before preempting a job)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException


def accumulating(trainer: Trainer) -> bool:
    """Whether the training batch that just ended added to gradients that no optimizer step has used
    yet (inside a trainer.accumulate_grad_batches window): a checkpoint there would not hold them."""
    return trainer.fit_loop.epoch_loop._should_accumulate()


class CheckpointOnSigterm(Checkpoint):
    """Save `<dirpath>/<filename>.ckpt` (last.ckpt) when Lightning stops training on SIGTERM.

    Lightning's signal handler lets the current batch finish, then raises SIGTERMException; the
    checkpoint is taken there, between two batches, so the run resumes exactly. Where a checkpoint
    could not resume exactly, the stop waits: inside a gradient-accumulation window until its
    optimizer step (the gradients summed so far are not saved), and during validation until it ends
    (the metrics summed so far are not saved, and with ema=enabled the model holds the averaged
    weights meanwhile). Only training stops this way: a SIGTERM while testing leaves the last.ckpt
    that training wrote. Other exceptions (a bug, running out of memory, Ctrl-C) can strike
    mid-step, so they never overwrite last.ckpt. (Not Lightning's OnExceptionCheckpoint: fit()
    would then resume from the newest checkpoint in the directory whenever no ckpt_path is given,
    and delete the file after every finished run.)
    """

    def __init__(self, dirpath: str, filename: str = "last") -> None:
        self.ckpt_path = str(Path(dirpath) / f"{filename}.ckpt")
        self._held = False

    def _hold(self, trainer: Trainer) -> None:
        # Lightning raises SIGTERMException after every batch's hooks while this flag is set.
        if trainer.received_sigterm:
            trainer._signal_connector.received_sigterm = False
            self._held = True

    def _release(self, trainer: Trainer) -> None:
        if self._held:
            trainer._signal_connector.received_sigterm = True
            self._held = False

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if accumulating(trainer):
            self._hold(trainer)
        else:
            self._release(trainer)

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            self._hold(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            self._release(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and trainer.state.fn == TrainerFn.FITTING:
            trainer.save_checkpoint(self.ckpt_path)
