"""Stop a run whose loss is no longer a number, before a checkpoint of broken weights is saved."""

from __future__ import annotations

import os
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from ..errors import ConfigurationError


class TrainingDiverged(ConfigurationError):
    """The loss became nan or infinite: the settings (usually the learning rate) made training diverge."""


class StopOnNonFiniteLoss(Callback):
    """Raise TrainingDiverged once a training step's loss, or a validation loss, is nan or infinite,
    naming the first such step; weights that give such a loss are never checkpointed.

    Lightning's EarlyStopping(check_finite=True) watches one validation metric and stops only at the
    end of an epoch, after that epoch's checkpoints (val/acc stays finite when the weights are nan).
    Reading a GPU loss waits for the GPU, so the step losses are kept on the device and read together
    every `check_every_n_steps` steps (default: the trainer's log_every_n_steps), at the end of each
    epoch and validation, and before any checkpoint is saved. Lightning runs checkpoint callbacks after
    all others, so raising here comes first. Every process takes part, so under DDP all stop together.
    """

    def __init__(self, learning_rate: float | None = None, check_every_n_steps: int | None = None) -> None:
        self.learning_rate = learning_rate
        self.check_every_n_steps = check_every_n_steps
        self.losses: list[tuple[int, int, torch.Tensor]] = []  # (epoch, step, loss) not read yet

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            self.losses.append((trainer.current_epoch, trainer.global_step, loss.detach()))
        if len(self.losses) >= (self.check_every_n_steps or trainer.log_every_n_steps):
            self.check(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.check(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.check(trainer)
        if not trainer.sanity_checking:
            loss = trainer.callback_metrics.get("val/loss")
            finite = loss is None or bool(torch.isfinite(loss).all())
            where = (trainer.current_epoch, trainer.global_step, float(loss) if loss is not None else 0.0)
            self.stop_if(trainer, None if finite else ("validation loss", *where))

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        self.check(trainer)

    def check(self, trainer: Trainer) -> None:
        """Read the step losses kept so far (one wait for the GPU); stop at the first non-finite one."""
        first = None
        if self.losses:
            losses = torch.stack([loss.float().reshape(-1)[0] for *_, loss in self.losses]).cpu()
            bad = (~torch.isfinite(losses)).nonzero()
            if len(bad):
                epoch, step, _ = self.losses[int(bad[0])]
                first = ("training loss", epoch, step, float(losses[int(bad[0])]))
            self.losses.clear()
        self.stop_if(trainer, first)

    def stop_if(self, trainer: Trainer, first: tuple[str, int, int, float] | None) -> None:
        if not trainer.strategy.reduce_boolean_decision(first is not None, all=False):
            return
        here = ("loss in another process", trainer.current_epoch, trainer.global_step, 0.0)
        what, epoch, step, value = first or here
        # Only files on disk: a save this stop interrupted may have named its file already.
        kept = sorted({getattr(c, "best_model_path", "") for c in trainer.checkpoint_callbacks})
        kept = [path for path in kept if path and os.path.isfile(path)]
        lr = f" (it is {self.learning_rate:g})" if self.learning_rate is not None else ""
        raise TrainingDiverged(
            f"Training diverged: the {what} became {value if first else 'nan or inf'} at epoch {epoch}, "
            f"step {step}; stopped without results. Lower optimizer.lr{lr} or clip gradients "
            "(trainer.gradient_clip_val=1.0)."
            + (f" Checkpoints from before it are kept: {', '.join(kept)}." if kept else "")
        )
