"""What is bad input: the types and ranges of the keys users set, and settings that need the built
trainer to judge. Every check names the key, the value and the fix; all of them run before training."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigurationError
from .given_values import BOOLEAN_SPELLINGS, as_boolean, check_given_values, given_keys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Number:
    """A whole (`whole=True`) or real number in [minimum, maximum] (maximum excluded when `open_top`)."""

    example: str
    whole: bool = False
    minimum: float | None = None
    maximum: float | None = None
    open_top: bool = False
    nullable: bool = False

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value`, or None."""
        if value is None:
            return None if self.nullable else "must be set"
        kinds = (int,) if self.whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            return "is not a whole number" if self.whole else "is not a number"
        too_low = self.minimum is not None and value < self.minimum
        too_high = self.maximum is not None and (
            value >= self.maximum if self.open_top else value > self.maximum
        )
        if not (too_low or too_high):
            return None
        if self.maximum is None:
            return f"must be at least {self.minimum:g}"
        top = f"below {self.maximum:g}" if self.open_top else f"at most {self.maximum:g}"
        return f"must be from {self.minimum:g} to {top}"


WHOLE_AT_LEAST_1 = {"whole": True, "minimum": 1}
PROBABILITY = {"minimum": 0, "maximum": 1}
# Every key below that the run's config has is checked; keys of other tasks are simply absent.
SETTINGS: dict[str, Number] = {
    "seed": Number("42", whole=True, minimum=0),
    "trainer.max_epochs": Number("10", **WHOLE_AT_LEAST_1),
    "trainer.min_epochs": Number("1", whole=True, minimum=0, nullable=True),
    "trainer.accumulate_grad_batches": Number("2", **WHOLE_AT_LEAST_1),
    "trainer.log_every_n_steps": Number("10", **WHOLE_AT_LEAST_1),
    "trainer.check_val_every_n_epoch": Number("1", **WHOLE_AT_LEAST_1, nullable=True),
    "trainer.num_nodes": Number("1", **WHOLE_AT_LEAST_1),
    "trainer.gradient_clip_val": Number("1.0", minimum=0, nullable=True),
    "data.batch_size": Number("64", **WHOLE_AT_LEAST_1),
    "data.num_workers": Number("4", whole=True, minimum=0, nullable=True),
    "data.image_size": Number("224", **WHOLE_AT_LEAST_1, nullable=True),
    "data.random_erasing": Number("0.25", **PROBABILITY),
    "data.split_seed": Number("0", whole=True, minimum=0),
    "data.folds": Number("5", whole=True, minimum=2, nullable=True),
    "data.fold": Number("0", whole=True, minimum=0),
    "model.drop_rate": Number("0.1", **PROBABILITY, open_top=True),
    "model.drop_path_rate": Number("0.1", **PROBABILITY, open_top=True, nullable=True),
    "model.label_smoothing": Number("0.1", **PROBABILITY, open_top=True),
    "model.mixup.prob": Number("1.0", **PROBABILITY),
    "model.mixup.mixup_alpha": Number("0.8", minimum=0),
    "model.mixup.cutmix_alpha": Number("1.0", minimum=0),
    "model.mixup.switch_prob": Number("0.5", **PROBABILITY),
    "model.gamma": Number("2.0", minimum=0),
    "optimizer.lr": Number("1e-3", minimum=0),
    "optimizer.weight_decay": Number("0.05", minimum=0),
    "optimizer.momentum": Number("0.9", **PROBABILITY, open_top=True),
    "scheduler.warmup_epochs": Number("1", whole=True, minimum=0),
    "scheduler.warmup_lr": Number("1e-5", minimum=0),
    "scheduler.min_lr": Number("1e-5", minimum=0),
    "finetune.unfreeze_at_epoch": Number("2", whole=True, minimum=0, nullable=True),
    "finetune.backbone_lr_scale": Number("0.1", minimum=0),
    # tune.py. Lightning's suggestion skips the first 10 and the last rate of the range test and needs
    # two more, so fewer than 13 steps can never suggest a rate.
    "lr_find.min_lr": Number("1e-8", minimum=0),
    "lr_find.max_lr": Number("1.0", minimum=0),
    "lr_find.num_training": Number("100", whole=True, minimum=13),
    "lr_find.early_stop_threshold": Number("4.0", minimum=1, nullable=True),
    "scale_batch_size.init_val": Number("16", **WHOLE_AT_LEAST_1),
    "scale_batch_size.max_trials": Number("7", **WHOLE_AT_LEAST_1),
    "scale_batch_size.steps_per_trial": Number("3", **WHOLE_AT_LEAST_1),
    "scale_batch_size.max_val": Number("1024", **WHOLE_AT_LEAST_1, nullable=True),
    "scale_batch_size.margin": Number("0.05", **PROBABILITY, open_top=True),
    # predict.py
    "top_k": Number("5", **WHOLE_AT_LEAST_1),
    "batch_size": Number("64", **WHOLE_AT_LEAST_1),
    "num_workers": Number("4", whole=True, minimum=0),
}


def check_given_settings(config: DictConfig, hydra: DictConfig | None = None) -> None:
    """Refuse a value of the wrong type or out of range, naming the key, the value and an example:
    the keys of SETTINGS by their own rule first (it knows a whole number from a real one), then every
    other key by the rules of given_values."""
    for key, rule in SETTINGS.items():
        if OmegaConf.select(config, key, default="<absent>") == "<absent>":
            continue
        value = OmegaConf.select(config, key)
        problem = rule.problem(value)
        if problem:
            raise ConfigurationError(f"{key}={value!r} {problem}; set e.g. {key}={rule.example}.")
    check_given_values(config, hydra)


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
