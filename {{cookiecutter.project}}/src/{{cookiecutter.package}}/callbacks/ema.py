"""An exponential moving average of the weights (configs/ema), also for testing after training."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import EMAWeightAveraging as LightningEMAWeightAveraging
from lightning.pytorch.trainer.states import TrainerFn


class EMAWeightAveraging(LightningEMAWeightAveraging):
    """Lightning's EMA of the weights, also when a checkpoint is tested after training.

    Checkpoints hold the averaged weights in `state_dict` and the live ones in
    `current_model_state`. Lightning's callback restores the live weights whenever a checkpoint is
    loaded while it holds an average, so `trainer.test(ckpt_path=best)` right after fitting would
    test the live weights. Here the live weights are restored only to resume training.
    """

    def on_load_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
