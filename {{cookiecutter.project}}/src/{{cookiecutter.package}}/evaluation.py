"""The eval task: test a trained checkpoint on the test split, with the preprocessing it was trained with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from .callbacks.flip_tta import FlipTTA
from .data import ClassificationDataModule
from .errors import ConfigurationError, instantiate_checked
from .run.checkpoints import load_classifier
from .run.checks import check_switch
from .run.directory import metrics_as_floats
from .run.task import Run, instantiate_callbacks


def evaluate(config: DictConfig) -> dict[str, Any]:
    """Test the checkpoint `config.ckpt_path` and write results.json; return those results."""
    with Run(config) as run:
        flip_tta = check_switch(config, "flip_tta")
        model = load_classifier(config.ckpt_path)
        datamodule: ClassificationDataModule = instantiate_checked(config.data, seed=config.seed)
        if list(datamodule.class_names) != list(model.class_names):
            raise ConfigurationError(
                f"The checkpoint was trained on classes {model.class_names}, the data has "
                f"{datamodule.class_names}. Pass the data options you trained with (data=...)."
            )
        datamodule.use_preprocessing(model.hparams.preprocessing)
        callbacks = list(instantiate_callbacks(config.get("callbacks")).values())
        trainer = run.build_trainer([*callbacks, *([FlipTTA()] if flip_tta else [])])
        run.save_config()
        trainer.test(model, datamodule=datamodule)
        metrics = metrics_as_floats(trainer.callback_metrics)
        checkpoint = str(Path(config.ckpt_path).expanduser().resolve())
        return run.finish(
            {"metrics": metrics, "checkpoint": checkpoint},
            title=f"Evaluated {checkpoint}",
            paths={},
            metrics=metrics,
        )
