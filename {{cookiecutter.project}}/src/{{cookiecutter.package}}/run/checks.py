"""What is bad input beyond each key's type and range (run/settings.py): combinations of settings,
switches, and settings that need the built trainer to judge. Every check names the key, the value and
the fix; all of them run before training."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigurationError
from .given_values import BOOLEAN_SPELLINGS, as_boolean, given_keys
from .settings import check_given_settings

log = logging.getLogger(__name__)


def check_settings(config: DictConfig) -> None:
    """check_given_settings and the folds inside a task, and a warning for a rate of 0."""
    from hydra.core.hydra_config import HydraConfig

    check_given_settings(config, HydraConfig.get() if HydraConfig.initialized() else None)
    check_folds(config)
    if OmegaConf.select(config, "optimizer.lr") == 0:
        log.warning(
            "optimizer.lr=0: no weight will change, so the model stays as it starts. "
            "Set e.g. optimizer.lr=1e-3."
        )


def check_folds(config: DictConfig) -> None:
    """data.fold must be one of data.folds, and given only with it (a sweep over data.fold without
    data.folds would train every job on the same split)."""
    if OmegaConf.select(config, "data.folds", default="<absent>") == "<absent>":
        return
    from ..data.splits import check_fold

    check_fold(config.data.folds, config.data.get("fold", 0), given="data.fold" in given_keys())


def check_single_run(config: DictConfig) -> None:
    """Refuse a sweep's settings in a single run (without -m), which would quietly train once."""
    search = OmegaConf.select(config, "hydra.runtime.choices.hparams_search")
    if search is not None:
        raise ConfigurationError(
            f"hparams_search={search} is a search over many runs, which needs -m: "
            f"python {config.hydra.job.name}.py -m hparams_search={search} ..."
        )


# Tasks that measure the configured model as a new training run would start it: they continue no run.
FRESH_START_TASKS = ("tune",)


def check_fresh_start(config: DictConfig, task: str) -> None:
    """Refuse resume and ckpt_path in a task of FRESH_START_TASKS (they share train.yaml's keys), before
    anything is written: they would point its run at another run's directory or weights."""
    if task not in FRESH_START_TASKS:
        return
    for key in ("resume", "ckpt_path"):
        value = config.get(key)
        if value is not None:
            raise ConfigurationError(
                f"{key}={value}: {task}.py finds settings for a new training run and continues none; "
                f"drop {key} (to start from trained weights, give model.weights=<file>)."
            )


def check_tune_settings(config: DictConfig) -> tuple[bool, bool]:
    """Whether tune.py finds the rate and the batch size; refuse settings of the finders Lightning
    would reject late or that could find nothing."""
    find_lr, find_batch_size = check_switch(config, "find_lr"), check_switch(config, "find_batch_size")
    if not (find_lr or find_batch_size):
        raise ConfigurationError(
            "find_lr=false and find_batch_size=false: nothing to find; set find_lr=true or "
            "find_batch_size=true."
        )
    settings = config.lr_find
    if settings.mode not in ("exponential", "linear"):
        raise ConfigurationError(f"lr_find.mode={settings.mode!r}: use exponential or linear.")
    if settings.mode == "exponential" and settings.min_lr <= 0:
        raise ConfigurationError(
            f"lr_find.min_lr={settings.min_lr} must be above 0 for an exponential range; set e.g. "
            "lr_find.min_lr=1e-8."
        )
    if settings.min_lr >= settings.max_lr:
        raise ConfigurationError(
            f"lr_find.min_lr={settings.min_lr} >= lr_find.max_lr={settings.max_lr}: the range test goes "
            "from min_lr up to max_lr; set e.g. lr_find.min_lr=1e-8 lr_find.max_lr=1.0."
        )
    if config.scale_batch_size.mode not in ("power", "binsearch"):
        raise ConfigurationError(
            f"scale_batch_size.mode={config.scale_batch_size.mode!r}: use power or binsearch."
        )
    return find_lr, find_batch_size


def check_switch(config: DictConfig, key: str) -> bool:
    """The value of a true/false setting (false when the config lacks it), read as given_values reads
    booleans (also in-process, where no Hydra app composed the defaults); anything else is refused."""
    value = OmegaConf.select(config, key, default=False)
    boolean = as_boolean(value)
    if boolean is None:
        raise ConfigurationError(
            f"{key}={value!r} is not a boolean; use {BOOLEAN_SPELLINGS}, e.g. {key}=false."
        )
    return boolean


def check_optimized_direction(direction: Any) -> None:
    """Refuse an `optimized_direction` other than maximize or minimize (train runs and searches)."""
    if direction not in ("maximize", "minimize"):
        raise ConfigurationError(f"optimized_direction={direction!r}: use maximize or minimize.")


def check_train_settings(config: DictConfig) -> None:
    """Refuse combinations of training settings that would fail late or silently train nothing."""
    unfreeze_at_epoch = config.get("finetune", {}).get("unfreeze_at_epoch")
    if unfreeze_at_epoch is not None and unfreeze_at_epoch >= config.trainer.max_epochs:
        raise ConfigurationError(
            f"finetune.unfreeze_at_epoch={unfreeze_at_epoch} >= trainer.max_epochs="
            f"{config.trainer.max_epochs}: the backbone would never train. Lower it, raise "
            "trainer.max_epochs, or use finetune=linear_probe."
        )
    min_epochs, max_epochs = config.trainer.get("min_epochs"), config.trainer.max_epochs
    if min_epochs is not None and min_epochs > max_epochs:
        raise ConfigurationError(
            f"trainer.min_epochs={min_epochs} > trainer.max_epochs={max_epochs}: the run would stop at "
            f"{max_epochs} anyway. Lower trainer.min_epochs or raise trainer.max_epochs."
        )
    check_optimized_direction(config.get("optimized_direction", "maximize"))
    mixup = config.model.get("mixup") or {}
    if mixup.get("prob", 0) > 0 and config.data.batch_size % 2:
        raise ConfigurationError(
            "model.mixup needs an even data.batch_size (it mixes pairs of images); "
            f"got data.batch_size={config.data.batch_size}."
        )


def check_trainer_settings(
    config: DictConfig, trainer: Any, callbacks: Mapping[str, Any], metric_names: list[str]
) -> None:
    """Checks that need the built Trainer: its world size, and the metrics callbacks monitor.

    Judged from what Lightning built (trainer.world_size counts devices x nodes, whatever strategy
    string chose them), not from the config's strings; all before any process starts or epoch runs.
    """
    from ..data.base import WEIGHTED_SAMPLER_NEEDS_ONE_DEVICE

    if trainer.world_size > 1 and config.data.get("weighted_sampler"):
        raise ConfigurationError(WEIGHTED_SAMPLER_NEEDS_ONE_DEVICE)
    monitors = {
        f"callbacks.{name}.monitor": getattr(callback, "monitor", None)
        for name, callback in callbacks.items()
    }
    if config.get("scheduler", {}).get("sched") == "plateau":
        monitors["scheduler.monitor"] = config.scheduler.monitor
    optimized = config.get("optimized_metric")
    if optimized is not None and not (config.get("test") and optimized.startswith("test/")):
        monitors["optimized_metric"] = optimized
    for key, metric in monitors.items():
        if metric is not None and metric not in metric_names:
            also = " (or a test/ metric, with test=true)" if key == "optimized_metric" else ""
            raise ConfigurationError(
                f"{key}={metric!r} is not a metric this run logs; use one of {', '.join(metric_names)}{also}."
            )
