"""Train a classifier from a composed config: fit, test the best checkpoint, write results.json."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf

from .console import print_config, print_outputs, save_config
from .data import ClassificationDataModule
from .data.base import WEIGHTED_SAMPLER_NEEDS_ONE_DEVICE
from .errors import ConfigurationError, instantiate_checked
from .loggers import finish_loggers, instantiate_loggers, logger_directories
from .models import ImageClassifier
from .models.backbone import check_backbone_name
from .process import configure_process
from .results import check_output_dir_is_new, metrics_as_floats, write_results

log = logging.getLogger(__name__)


def instantiate_callbacks(config: DictConfig | None) -> list[Callback]:
    """Instantiate every callback of the `callbacks` group (entries set to null are skipped)."""
    return [instantiate(entry) for entry in (config or {}).values() if entry is not None]


def build_datamodule_and_model(config: DictConfig) -> tuple[ClassificationDataModule, ImageClassifier]:
    """Instantiate the data module, then the model for its classes and preprocessing."""
    check_backbone_name(config.model.backbone)  # before anything slow, and before timm's own errors
    datamodule: ClassificationDataModule = instantiate_checked(config.data)
    preprocessing = datamodule.resolve_preprocessing(config.model.backbone)
    model: ImageClassifier = instantiate_checked(
        config.model,
        class_names=datamodule.class_names,
        preprocessing=preprocessing,
        optimizer=OmegaConf.to_container(config.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(config.scheduler, resolve=True),
        finetune=OmegaConf.to_container(config.finetune, resolve=True) if "finetune" in config else None,
        _convert_="all",
    )
    return datamodule, model


def check_run_settings(config: DictConfig) -> None:
    """Refuse settings that would fail late or silently train nothing, naming the key to change."""
    max_epochs = config.trainer.get("max_epochs")
    if max_epochs is None or max_epochs < 1:
        raise ConfigurationError(
            f"trainer.max_epochs={max_epochs}: train for at least 1 epoch (the schedule spans the epochs)."
        )
    ckpt_path = config.get("ckpt_path")
    if ckpt_path and not Path(ckpt_path).expanduser().is_file():
        raise ConfigurationError(f"ckpt_path={ckpt_path!r}: no such checkpoint file to resume from.")
    unfreeze_at_epoch = config.get("finetune", {}).get("unfreeze_at_epoch")
    if unfreeze_at_epoch is not None and unfreeze_at_epoch >= max_epochs:
        raise ConfigurationError(
            f"finetune.unfreeze_at_epoch={unfreeze_at_epoch} >= trainer.max_epochs={max_epochs}: the "
            "backbone would never train. Lower it, raise trainer.max_epochs, or use finetune=linear_probe."
        )
    mixup = config.model.get("mixup") or {}
    if mixup.get("prob", 0) > 0 and config.data.batch_size % 2:
        raise ConfigurationError(
            "model.mixup needs an even data.batch_size (it mixes pairs of images); "
            f"got data.batch_size={config.data.batch_size}."
        )
    distributed = bool(config.trainer.get("strategy")) and "ddp" in str(config.trainer.strategy)
    if distributed and config.data.get("weighted_sampler"):
        raise ConfigurationError(WEIGHTED_SAMPLER_NEEDS_ONE_DEVICE)
    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if multirun and distributed:
        raise ConfigurationError(
            "DDP (trainer=ddp or ddp_sim) inside a multirun (-m) is not supported yet: Lightning would "
            "restart the whole sweep in every process. Run the jobs one by one, or sweep on one device."
        )


def build_trainer(config: DictConfig, callbacks: list[Callback], loggers: list) -> Trainer:
    """Instantiate the `trainer` group; settings Lightning rejects become a ConfigurationError."""
    if not loggers:
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    try:
        return instantiate(config.trainer, callbacks=callbacks, logger=loggers or False)
    except InstantiationException as error:
        # Lightning rejects bad values (precision, accelerator, devices, ...) when the Trainer is built.
        cause = error.__cause__ or error
        raise ConfigurationError(f"Invalid trainer settings: {cause}") from cause


def checkpoint_paths(trainer: Trainer) -> dict[str, Any]:
    """Return the monitored metric, the best checkpoint and score, and the latest checkpoint."""
    monitored = [c for c in trainer.checkpoint_callbacks if c.monitor is not None]
    latest = [c for c in trainer.checkpoint_callbacks if c.monitor is None]
    best = monitored[0] if monitored else None
    return {
        "monitor": best.monitor if best else None,
        "best_score": float(best.best_model_score) if best and best.best_model_score is not None else None,
        "best_checkpoint": (best.best_model_path or None) if best else None,
        "last_checkpoint": (latest[0].best_model_path or None) if latest else None,
    }


def fit_and_test(
    config: DictConfig, trainer: Trainer, model: ImageClassifier, datamodule: ClassificationDataModule
) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit, then test the best checkpoint (or the final weights when none was saved).

    Returns the metrics and the checkpoint paths as they were after fitting (testing a checkpoint
    restores the callbacks' state from it).
    """
    trainer.fit(model, datamodule=datamodule, ckpt_path=config.get("ckpt_path"))
    metrics = metrics_as_floats(trainer.callback_metrics)
    checkpoints = checkpoint_paths(trainer)
    if config.get("test"):
        best_checkpoint = checkpoints["best_checkpoint"]
        if not best_checkpoint:
            log.warning(
                "No best checkpoint was saved (debug=fdr or no model_checkpoint): testing the final weights."
            )
        trainer.test(model, datamodule=datamodule, ckpt_path=best_checkpoint, weights_only=True)
        metrics.update(metrics_as_floats(trainer.callback_metrics))
    return metrics, checkpoints


def describe_run(
    trainer: Trainer, metrics: dict[str, float], checkpoints: dict[str, Any], output_dir: Path, seconds: float
) -> dict[str, Any]:
    """Return the content of results.json: final metrics and where the checkpoints are."""
    return {
        "metrics": metrics,
        **checkpoints,
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
    check_run_settings(config)

    datamodule, model = build_datamodule_and_model(config)
    loggers = instantiate_loggers(config.get("logger"))
    trainer = build_trainer(config, instantiate_callbacks(config.get("callbacks")), loggers)
    if trainer.is_global_zero:
        print_config(config)
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, output_dir)
    try:
        metrics, checkpoints = fit_and_test(config, trainer, model, datamodule)
    finally:
        finish_loggers(loggers)

    results = describe_run(trainer, metrics, checkpoints, output_dir, time.perf_counter() - started)
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
