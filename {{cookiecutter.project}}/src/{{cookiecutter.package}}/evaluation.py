"""The eval task: test a trained checkpoint on the test split, with the preprocessing it was trained with."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .callbacks.flip_tta import FlipTTA
from .data import ClassificationDataModule
from .errors import ConfigurationError, instantiate_checked
from .run.checkpoints import load_classifier
from .run.checks import check_switch
from .run.directory import metrics_as_floats
from .run.given_values import given_keys
from .run.task import Run, instantiate_callbacks

# Besides image_size: the data.* preprocessing values a checkpoint records under the same names.
PREPROCESSING_KEYS = ("mean", "std", "interpolation", "crop_pct")


def check_preprocessing_not_given(config: DictConfig, trained: Mapping[str, Any]) -> None:
    """Refuse a data.* preprocessing value given on the command line that differs from the checkpoint's:
    eval.py measures the model as it was trained (and as predict and export use it), so it would be
    ignored. Values the data config itself holds (digits' image_size: 32) are not the user's."""
    values = {"image_size": trained["input_size"][-1], **{key: trained[key] for key in PREPROCESSING_KEYS}}
    for key in sorted(f"data.{name}" for name in values if f"data.{name}" in given_keys()):
        given, used = OmegaConf.select(config, key), values[key.removeprefix("data.")]
        given = OmegaConf.to_container(given) if OmegaConf.is_config(given) else given
        if given is not None and given != used:
            raise ConfigurationError(
                f"{key}={given}: the checkpoint fixes the preprocessing ({key.removeprefix('data.')}="
                f"{used}), and eval.py tests the model as it was trained; drop {key} (to test at "
                "another value, train with it)."
            )


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
        check_preprocessing_not_given(config, model.hparams.preprocessing)
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
