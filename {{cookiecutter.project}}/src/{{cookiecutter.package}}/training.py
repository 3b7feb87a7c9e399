"""Train a classifier from a composed config: fit, test the best checkpoint, write results.json."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf

from .console import print_config, print_outputs, save_config
from .data import ClassificationDataModule
from .errors import ConfigurationError
from .loggers import finish_loggers, instantiate_loggers, logger_directories
from .models import ImageClassifier
from .models.backbone import check_backbone_name
from .process import configure_process
from .results import RESULTS_FILE, metrics_as_floats, write_results

log = logging.getLogger(__name__)


def instantiate_callbacks(config: DictConfig | None) -> list[Callback]:
    """Instantiate every callback of the `callbacks` group (entries set to null are skipped)."""
    return [instantiate(entry) for entry in (config or {}).values() if entry is not None]


def check_output_dir_is_new(output_dir: Path) -> None:
    """Refuse to write into a directory that holds another run's results or checkpoints."""
    checkpoints = output_dir / "checkpoints"
    if (output_dir / RESULTS_FILE).exists() or (checkpoints.is_dir() and any(checkpoints.iterdir())):
        raise ConfigurationError(
            f"{output_dir} already holds the results or checkpoints of another run, which this run "
            "would overwrite. Leave hydra.run.dir at its default or choose a new directory."
        )


def build_datamodule_and_model(config: DictConfig) -> tuple[ClassificationDataModule, ImageClassifier]:
    """Instantiate the data module, then the model for its classes and preprocessing."""
    check_backbone_name(config.model.backbone)  # before anything slow, and before timm's own errors
    datamodule: ClassificationDataModule = instantiate(config.data)
    preprocessing = datamodule.resolve_preprocessing(config.model.backbone)
    model: ImageClassifier = instantiate(
        config.model,
        class_names=datamodule.class_names,
        preprocessing=preprocessing,
        optimizer=OmegaConf.to_container(config.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(config.scheduler, resolve=True),
        _convert_="all",
    )
    return datamodule, model


def build_trainer(config: DictConfig, callbacks: list[Callback], loggers: list) -> Trainer:
    if not loggers:
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    return instantiate(config.trainer, callbacks=callbacks, logger=loggers or False)


def fit_and_test(
    config: DictConfig, trainer: Trainer, model: ImageClassifier, datamodule: ClassificationDataModule
) -> dict[str, float]:
    """Fit, then test the best checkpoint (or the final weights when none was saved)."""
    trainer.fit(model, datamodule=datamodule, ckpt_path=config.get("ckpt_path"))
    metrics = metrics_as_floats(trainer.callback_metrics)
    if config.get("test"):
        checkpoint = trainer.checkpoint_callback
        best_checkpoint = checkpoint.best_model_path if checkpoint is not None else ""
        if not best_checkpoint:
            log.warning(
                "No checkpoint saved (fast_dev_run or no checkpoint callback): testing the final weights."
            )
        trainer.test(model, datamodule=datamodule, ckpt_path=best_checkpoint or None, weights_only=True)
        metrics.update(metrics_as_floats(trainer.callback_metrics))
    return metrics


def describe_run(
    trainer: Trainer, metrics: dict[str, float], output_dir: Path, seconds: float
) -> dict[str, Any]:
    """Return the content of results.json: final metrics and where the checkpoints are."""
    checkpoint = trainer.checkpoint_callback
    best_score = None if checkpoint is None else checkpoint.best_model_score
    return {
        "metrics": metrics,
        "monitor": None if checkpoint is None else checkpoint.monitor,
        "best_score": None if best_score is None else float(best_score),
        "best_checkpoint": (checkpoint.best_model_path or None) if checkpoint is not None else None,
        "last_checkpoint": (checkpoint.last_model_path or None) if checkpoint is not None else None,
        "epochs": trainer.current_epoch,
        "output_dir": str(output_dir),
        "wall_time_s": round(seconds, 2),
    }


def train(config: DictConfig) -> dict[str, Any]:
    """Fit the model, test its best checkpoint, and write results.json; return those results."""
    started = time.perf_counter()
    configure_process(config)
    output_dir = Path(config.paths.output_dir)
    check_output_dir_is_new(output_dir)

    datamodule, model = build_datamodule_and_model(config)
    loggers = instantiate_loggers(config.get("logger"))
    trainer = build_trainer(config, instantiate_callbacks(config.get("callbacks")), loggers)
    if trainer.is_global_zero:
        print_config(config)
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, output_dir)
    try:
        metrics = fit_and_test(config, trainer, model, datamodule)
    finally:
        finish_loggers(loggers)

    results = describe_run(trainer, metrics, output_dir, time.perf_counter() - started)
    if trainer.is_global_zero:
        results_path = write_results(output_dir, results)
        print_outputs(
            f"Run finished in {results['wall_time_s']:.1f} s",
            {
                "run directory": output_dir,
                "best checkpoint": results["best_checkpoint"],
                "last checkpoint": results["last_checkpoint"],
                "logs": ", ".join(logger_directories(loggers)),
                "config": output_dir / "config.yaml",
                "results": results_path,
            },
            {name: value for name, value in metrics.items() if name.startswith("test/")},
        )
    return results
