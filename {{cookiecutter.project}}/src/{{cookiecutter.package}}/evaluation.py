"""Test a trained checkpoint on the test split, with the preprocessing it was trained with."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import RichProgressBar
from omegaconf import DictConfig

from .console import print_outputs, save_config
from .data import ClassificationDataModule
from .errors import ConfigurationError, instantiate_checked
from .loggers import finish_loggers, instantiate_loggers, logger_directories
from .models import ImageClassifier
from .process import configure_process
from .results import check_output_dir_is_new, metrics_as_floats, write_results
from .training import build_trainer


def load_classifier(checkpoint_path: str | Path) -> ImageClassifier:
    """Load an ImageClassifier checkpoint offline: plain-data hyperparameters, no pretrained download."""
    path = Path(checkpoint_path).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"ckpt_path={str(checkpoint_path)!r}: no such file.")
    return ImageClassifier.load_from_checkpoint(
        path, map_location="cpu", weights_only=True, pretrained=False, weights=None, compile=False
    )


def evaluate(config: DictConfig) -> dict[str, Any]:
    """Test the checkpoint `config.ckpt_path` and write results.json; return those results."""
    started = time.perf_counter()
    configure_process(config)
    output_dir = Path(config.paths.output_dir)
    check_output_dir_is_new(output_dir)
    model = load_classifier(config.ckpt_path)

    datamodule: ClassificationDataModule = instantiate_checked(config.data)
    if list(datamodule.class_names) != list(model.class_names):
        raise ConfigurationError(
            f"The checkpoint was trained on classes {model.class_names}, the data has "
            f"{datamodule.class_names}. Pass the data options you trained with (data=...)."
        )
    datamodule.use_preprocessing(model.hparams.preprocessing)
    loggers = instantiate_loggers(config.get("logger"))
    trainer = build_trainer(config, [RichProgressBar()], loggers)
    try:
        trainer.test(model, datamodule=datamodule)
    finally:
        finish_loggers(loggers)
    metrics = metrics_as_floats(trainer.callback_metrics)
    results = {
        "metrics": metrics,
        "checkpoint": str(Path(config.ckpt_path).expanduser().resolve()),
        "output_dir": str(output_dir),
        "wall_time_s": round(time.perf_counter() - started, 2),
    }
    if trainer.is_global_zero:
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, output_dir)
        results_path = write_results(output_dir, results)
        print_outputs(
            f"Evaluated {results['checkpoint']}",
            {
                "run directory": output_dir,
                "logs": ", ".join(logger_directories(loggers)),
                "config": output_dir / "config.yaml",
                "results": results_path,
            },
            metrics,
        )
    return results
