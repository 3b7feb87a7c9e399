"""Learning curves drawn at the end of fitting from what the run logged, whatever the logger."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule, Trainer

from .figures import RunFilesCallback

EPOCH_METRICS = ("train/loss", "train/acc", "val/loss", "val/acc")


class LearningCurves(RunFilesCallback):
    """`curves.png` (loss and accuracy per epoch, train and val, and the learning rate of every
    parameter group per logged step) and `curves.csv` (the per-epoch values).

    The history is kept in checkpoints, so a resumed run draws its whole training.
    """

    def __init__(self, dirpath: str) -> None:
        super().__init__(dirpath)
        self.epochs: dict[int, dict[str, float]] = {}
        self.learning_rates: dict[str, list[tuple[int, float]]] = {}
        self._trainer: Trainer | None = None
        self._train_epoch_ending: int | None = None
        self._last_step: int | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._trainer = trainer

    def _record(self, epoch: int, names: tuple[str, ...]) -> None:
        metrics = self._trainer.callback_metrics
        row = self.epochs.setdefault(epoch, {})
        row.update({name: float(metrics[name]) for name in names if name in metrics})

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._record(trainer.current_epoch, ("val/loss", "val/acc"))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if (step % max(trainer.log_every_n_steps, 1) and step != 1) or step == self._last_step:
            return  # (the same step again: a micro-batch of gradient accumulation)
        self._last_step = step
        for optimizer in trainer.optimizers:
            for index, group in enumerate(optimizer.param_groups):
                name = str(group.get("name", f"group_{index}"))
                self.learning_rates.setdefault(name, []).append((step, float(group["lr"])))

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # The model logs the epoch's train metrics after the callbacks' hook has run: they are read
        # when the next epoch starts, at the end of fitting, or when a checkpoint asks for the state.
        self._train_epoch_ending = trainer.current_epoch

    def _record_finished_train_epoch(self) -> None:
        if self._train_epoch_ending is not None:
            self._record(self._train_epoch_ending, ("train/loss", "train/acc"))
            self._train_epoch_ending = None

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._record_finished_train_epoch()

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._record_finished_train_epoch()
        if not self.epochs or not self.writes_files(trainer):
            return
        from .drawing import curves_figure

        rows = [{"epoch": epoch, **values} for epoch, values in sorted(self.epochs.items())]
        self.save_csv(
            "curves",
            ["epoch", *EPOCH_METRICS],
            ([row.get(k, "") for k in ("epoch", *EPOCH_METRICS)] for row in rows),
        )
        self.save_figure(trainer, curves_figure(rows, self.learning_rates), "curves", "learning curves")

    def state_dict(self) -> dict[str, Any]:
        self._record_finished_train_epoch()
        return {"epochs": self.epochs, "learning_rates": self.learning_rates}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs = {int(k): dict(v) for k, v in state_dict["epochs"].items()}
        self.learning_rates = {k: [tuple(p) for p in v] for k, v in state_dict["learning_rates"].items()}
