"""Stop a run whose loss is no longer a number, before a checkpoint of broken weights is saved."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from ..errors import ConfigurationError


class TrainingDiverged(ConfigurationError):
    """The loss became nan or infinite: the settings (usually the learning rate) made training diverge."""


class StopOnNonFiniteLoss(Callback):
    """Raise TrainingDiverged at the first training step whose loss is nan or infinite, and after a
    validation whose loss is: weights that give such a loss are never checkpointed.

    Lightning's EarlyStopping(check_finite=True) watches one validation metric and only stops at the
    end of an epoch, after that epoch's checkpoints (val/acc stays finite when the weights are nan).
    Lightning runs checkpoint callbacks after all others, so raising here comes before they save.
    Every process takes part in the decision, so under DDP all stop together.
    """

    def __init__(self, learning_rate: float | None = None) -> None:
        self.learning_rate = learning_rate

    def _stop_if(self, trainer: Trainer, value: Any, what: str) -> None:
        broken = value is not None and not bool(torch.isfinite(torch.as_tensor(value)).all())
        if trainer.strategy.reduce_boolean_decision(broken, all=False):
            kept = [getattr(c, "best_model_path", "") for c in trainer.checkpoint_callbacks]
            kept = [path for path in kept if path]
            lr = f" (it is {self.learning_rate:g})" if self.learning_rate is not None else ""
            value = float(torch.as_tensor(value).float().sum())  # nan, inf or -inf
            raise TrainingDiverged(
                f"Training diverged: the {what} became {value} at epoch "
                f"{trainer.current_epoch}, step {trainer.global_step}; stopped without results. Lower "
                f"optimizer.lr{lr} or clip gradients (trainer.gradient_clip_val=1.0)."
                + (f" Checkpoints from before it are kept: {', '.join(sorted(set(kept)))}." if kept else "")
            )

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        self._stop_if(trainer, None if loss is None else loss.detach(), "training loss")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._stop_if(trainer, trainer.callback_metrics.get("val/loss"), "validation loss")
