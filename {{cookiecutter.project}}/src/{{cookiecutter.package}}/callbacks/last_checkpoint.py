"""last.ckpt: at the end of training epochs, at most about once a minute, and always after the last
one; and during long epochs, only between optimizer steps."""

from __future__ import annotations

import os
import time
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from .preemption import accumulating


def saved_in_another_directory(callback: ModelCheckpoint, state_dict: dict[str, Any]) -> bool:
    """Whether a ModelCheckpoint's saved state comes from a run in another directory (a run
    continued with ckpt_path=), where Lightning restores only the path of its best checkpoint."""
    source, here = state_dict.get("dirpath"), callback.dirpath
    return bool(source and here) and os.path.realpath(source) != os.path.realpath(here)


class ResumeCheckpoint(ModelCheckpoint):
    """A ModelCheckpoint without a monitor, for the files a run resumes from: its record is the
    path of its latest write, which a run continued with ckpt_path= in another directory does not
    take over (Lightning would keep the old run's path and warn that scores were not restored)."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not saved_in_another_directory(self, state_dict):
            super().load_state_dict(state_dict)


class LastCheckpoint(ResumeCheckpoint):
    """Lightning's ModelCheckpoint for the checkpoint to resume from, written at the end of a training
    epoch when `min_seconds_between_writes` have passed since its previous write (or since training
    started), and always at the end of the final epoch (max_epochs, max_steps or a stop requested by
    early stopping or max_time).

    With the optimizer state a checkpoint is about three times the weights (AdamW: 59 MB for
    resnet10t). Short epochs paid that write every time: 10 of them were 8% of the default
    2-second-epoch run's wall time. A run killed with SIGKILL now loses at most the epochs of the last
    minute; SIGTERM (sigterm_checkpoint) and long epochs (periodic_checkpoint) are covered apart.
    `min_seconds_between_writes=0` writes every epoch.
    """

    def __init__(self, *args, min_seconds_between_writes: float = 60.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.min_seconds_between_writes = min_seconds_between_writes
        self._last_write = time.monotonic()

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._last_write = time.monotonic()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._due(trainer):
            super().on_train_epoch_end(trainer, pl_module)
            self._last_write = time.monotonic()

    def _due(self, trainer: Trainer) -> bool:
        max_epochs, max_steps = trainer.max_epochs, trainer.max_steps
        final = (
            trainer.should_stop
            or (max_epochs is not None and max_epochs >= 0 and trainer.current_epoch + 1 >= max_epochs)
            or (max_steps >= 0 and trainer.global_step >= max_steps)
        )
        waited = time.monotonic() - self._last_write >= self.min_seconds_between_writes
        # Every process must take the same decision (saving is collective) and their clocks differ.
        return bool(trainer.strategy.broadcast(final or waited))


class PeriodicCheckpoint(ResumeCheckpoint):
    """Lightning's ModelCheckpoint for writes during an epoch (train_time_interval or
    every_n_train_steps), taken only after an optimizer step: inside a gradient-accumulation window
    the gradients summed so far are not in a checkpoint, so one written there would not resume
    exactly (a write that falls due there waits for the window's step)."""

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not accumulating(trainer):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
