"""The tune task: Lightning's finders on the model, data and fine-tuning strategy train.py would train,
the picture of the loss against the rate, and the train.py command to run next."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .atomic import write_atomically
from .callbacks import SeedEveryStep
from .errors import ConfigurationError
from .finders import find_batch_size, find_learning_rate, learning_rate_figure, short_number
from .pictures import figure_png
from .run.assembly import build_datamodule_and_model
from .run.checks import check_fresh_start, check_train_settings, check_tune_settings
from .run.task import Run

# tune.py's own settings, which train.py does not have.
TUNE_KEYS = ("find_lr", "find_batch_size", "lr_find", "scale_batch_size")
PICTURE = "lr_find.png"


def train_command(found: Mapping[str, str]) -> str:
    """`python train.py` with this run's command-line overrides, tune.py's own left out and the values
    found (e.g. optimizer.lr) put in place of any given."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    given = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    parsed = OverridesParser.create().parse_overrides(given)
    kept = [
        text
        for text, override in zip(given, parsed, strict=True)
        if override.key_or_group.split(".")[0] not in TUNE_KEYS and override.key_or_group not in found
    ]
    script = Path(sys.argv[0])
    train = str(script.with_name("train.py")) if script.name == "tune.py" else "train.py"
    return shlex.join(["python", train, *kept, *(f"{key}={value}" for key, value in found.items())])


def tune(config: DictConfig) -> dict[str, Any]:
    """Find the batch size (find_batch_size=true), then the learning rate at it (find_lr, the default);
    write the picture and results.json, print the train.py command that uses them; return the results.

    The batch size comes first because the best rate depends on it. Nothing is logged to the logger
    group and no checkpoint is kept: Lightning's finders save the model's starting state in this run's
    directory (trainer.default_root_dir) and remove it when they end.
    """
    with Run(config) as run:
        check_fresh_start(config, "tune")
        find_lr, find_batch = check_tune_settings(config)
        check_train_settings(config)
        datamodule, model = build_datamodule_and_model(config)
        trainer = run.build_trainer([SeedEveryStep(config.seed)], with_loggers=False)
        if trainer.fast_dev_run:
            raise ConfigurationError(
                "trainer.fast_dev_run is set (debug=fdr): Lightning's finders skip such a run; drop it."
            )
        run.save_config(show=True)

        results: dict[str, Any] = {}
        found: dict[str, str] = {}
        if find_batch:
            results["scale_batch_size"] = find_batch_size(
                trainer, model, datamodule, OmegaConf.to_container(config.scale_batch_size)
            )
            found["data.batch_size"] = str(results["scale_batch_size"]["batch_size"])
        picture = None
        if find_lr:
            settings = OmegaConf.to_container(config.lr_find)
            results["lr_find"] = find_learning_rate(trainer, model, datamodule, settings)
            suggestion = results["lr_find"]["suggestion"]
            if suggestion is not None:
                found["optimizer.lr"] = short_number(suggestion)
            title = (
                f"{config.model.backbone}, finetune={config.finetune.name}, "
                f"data.batch_size={datamodule.batch_size}"
            )
            figure = learning_rate_figure(
                results["lr_find"]["curve"], suggestion, settings["mode"] == "exponential", title
            )
            if run.is_global_zero:
                picture = write_atomically(run.output_dir / PICTURE, figure_png(figure))
        command = train_command(found)
        results = run.finish(
            {**results, "found": found, "next_command": command},
            title="Tuning finished",
            paths={"loss against rate": picture},
            metrics={},
        )
        if run.is_global_zero:
            print_found(found, command, find_lr)
        return results


def print_found(found: Mapping[str, str], command: str, find_lr: bool) -> None:
    for key, value in found.items():
        print(f"  found  {key}={value}")
    if find_lr and "optimizer.lr" not in found:
        print(
            "  No rate to suggest: the loss curve has too few finite points; raise lr_find.num_training "
            "or lower lr_find.max_lr."
        )
    print(f"\nNext: {command}")
