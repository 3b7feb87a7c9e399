"""The train task: fit a classifier, test its best checkpoint, write results.json."""

from __future__ import annotations

import logging
from typing import Any

import torch
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import EarlyStopping, ModelSummary
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from .callbacks import CheckpointOnSigterm, SeedEveryStep, StopOnNonFiniteLoss
from .data import ClassificationDataModule
from .errors import RunInterrupted
from .models import ImageClassifier
from .run.assembly import build_datamodule_and_model
from .run.calibration import calibrate_checkpoint
from .run.checkpoints import check_resumable
from .run.checks import check_switch, check_train_settings, check_trainer_settings
from .run.directory import metrics_as_floats
from .run.loggers import wants_model_graph
from .run.sweep_job import finished_sweep_job
from .run.task import Run, instantiate_callbacks

log = logging.getLogger(__name__)


def checkpoint_paths(trainer: Trainer) -> dict[str, Any]:
    """Return the monitored metric, the best checkpoint and score, and the latest checkpoint."""
    monitored = [c for c in trainer.checkpoint_callbacks if getattr(c, "monitor", None) is not None]
    latest = [c for c in trainer.checkpoint_callbacks if hasattr(c, "monitor") and c.monitor is None]
    best = monitored[0] if monitored else None
    return {
        "monitor": best.monitor if best else None,
        "best_score": float(best.best_model_score) if best and best.best_model_score is not None else None,
        "best_checkpoint": (best.best_model_path or None) if best else None,
        "last_checkpoint": (latest[0].best_model_path or None) if latest else None,
    }


def optimized_value(config: DictConfig, metrics: dict[str, float], checkpoints: dict[str, Any]) -> dict:
    """What a sweep optimises: `optimized_metric` (the best checkpoint's score when it is that
    checkpoint's monitor, else its final value), with `optimized_direction`."""
    name = config.optimized_metric
    best = checkpoints["best_score"] if checkpoints["monitor"] == name else None
    value = best if best is not None else metrics.get(name)
    if value is None:
        log.warning("optimized_metric=%s was not logged (logged: %s).", name, ", ".join(metrics))
    return {"metric": name, "value": value, "direction": config.optimized_direction}


def report_early_stop(trainer: Trainer) -> None:
    for callback in trainer.callbacks:
        if isinstance(callback, EarlyStopping) and callback.stopped_epoch > 0:
            log.info(
                "Early stopping ended the run after epoch %d of %d: %s did not improve for %d epochs "
                "(best %.4f).",
                callback.stopped_epoch + 1,
                trainer.max_epochs,
                callback.monitor,
                callback.patience,
                float(callback.best_score),
            )


def fit(
    trainer: Trainer, model: ImageClassifier, datamodule: ClassificationDataModule, ckpt_path: str | None
) -> None:
    """trainer.fit; a SIGTERM (preemption) becomes a message saying how to continue."""
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    except SIGTERMException:
        saved = [c.ckpt_path for c in trainer.callbacks if isinstance(c, CheckpointOnSigterm)]
        last = saved[0] if saved else "<run dir>/checkpoints/last.ckpt"
        raise RunInterrupted(
            f"Stopped by SIGTERM at epoch {trainer.current_epoch}, step {trainer.global_step}; saved "
            f"{last}. Continue with the same command plus resume=auto (or ckpt_path={last})."
        ) from None


def train(config: DictConfig) -> dict[str, Any]:
    """Fit the model, test its best checkpoint, and write results.json; return those results."""
    earlier = finished_sweep_job(config)
    if earlier is not None:  # a job of a sweep continued with resume=auto that finished before
        return earlier
    with Run(config) as run:
        check_train_settings(config)
        temperature_scaling = check_switch(config, "temperature_scaling")
        datamodule, model = build_datamodule_and_model(config)
        if config.get("ckpt_path"):
            check_resumable(config.ckpt_path, model, config.trainer.get("max_epochs"))
        callbacks = instantiate_callbacks(config.get("callbacks"))
        trainer = run.build_trainer(
            [*callbacks.values(), SeedEveryStep(config.seed), StopOnNonFiniteLoss(config.optimizer.get("lr"))]
        )
        check_trainer_settings(config, trainer, callbacks, model.monitorable_metrics())
        summary = any(isinstance(callback, ModelSummary) for callback in trainer.callbacks)
        if wants_model_graph(trainer.loggers) or (summary and not model.hparams.compile):
            # The model summary counts FLOPs on one image of this size (and TensorBoard traces the graph
            # on it); a compiled model would compile for it first, so it goes without.
            model.example_input_array = torch.zeros(1, *model.preprocessing["input_size"])
        run.save_config(show=True)

        fit(trainer, model, datamodule, config.get("ckpt_path"))
        report_early_stop(trainer)
        metrics = metrics_as_floats(trainer.callback_metrics)
        checkpoints = checkpoint_paths(trainer)  # testing a checkpoint restores the callbacks' state from it
        calibration = None
        if temperature_scaling and checkpoints["best_checkpoint"]:
            validation = DataLoader(datamodule.datasets["val"], batch_size=datamodule.batch_size)
            calibration = calibrate_checkpoint(trainer, model, validation, checkpoints["best_checkpoint"])
        elif temperature_scaling:
            log.warning("temperature_scaling=true needs a best checkpoint to fold T into; none was saved.")
        if config.get("test"):
            if not checkpoints["best_checkpoint"]:
                log.warning(
                    "No best checkpoint was saved (debug=fdr or no model_checkpoint): "
                    "testing the final weights."
                )
            trainer.test(
                model, datamodule=datamodule, ckpt_path=checkpoints["best_checkpoint"], weights_only=True
            )
            metrics.update(metrics_as_floats(trainer.callback_metrics))

        return run.finish(
            {
                "metrics": metrics,
                **checkpoints,
                "optimized": optimized_value(config, metrics, checkpoints),
                "epochs": trainer.current_epoch,
                # For the model card: how many images each split held.
                "split_sizes": {split: len(dataset) for split, dataset in datamodule.datasets.items()},
                **({"calibration": calibration} if calibration else {}),
            },
            title="Run finished",
            paths={
                "best checkpoint": checkpoints["best_checkpoint"],
                "last checkpoint": checkpoints["last_checkpoint"],
            },
            metrics={name: value for name, value in metrics.items() if name.startswith("test/")},
        )
