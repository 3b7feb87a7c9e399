"""An exponential moving average of the weights (configs/ema), also for testing after training."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import EMAWeightAveraging as LightningEMAWeightAveraging
from lightning.pytorch.trainer.states import TrainerFn


class EMAWeightAveraging(LightningEMAWeightAveraging):
    """Lightning's EMA of the weights, which stands for the live weights until it starts averaging,
    also when a checkpoint is tested after training.

    Checkpoints hold the averaged weights in `state_dict` and the live ones in
    `current_model_state`. Before its first update (update_starting_at_step) Lightning's average
    is the copy of the weights made when training began, so validation, checkpoints and, in a run
    shorter than that, the final weights would be those of the untrained model; here it follows
    the live weights until then. Lightning's callback also restores the live weights whenever a
    checkpoint is loaded while it holds an average, so `trainer.test(ckpt_path=best)` right after
    fitting would test the live weights; here they are restored only to resume training.
    """

    def _follow_until_averaging(self, pl_module: LightningModule) -> None:
        if self._average_model is not None and self._average_model.n_averaged == 0:
            self._average_model.module.load_state_dict(pl_module.state_dict())

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._follow_until_averaging(pl_module)
        super().on_validation_epoch_start(trainer, pl_module)

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._follow_until_averaging(pl_module)
        super().on_save_checkpoint(trainer, pl_module, checkpoint)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._follow_until_averaging(pl_module)
        super().on_train_end(trainer, pl_module)

    def on_load_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
