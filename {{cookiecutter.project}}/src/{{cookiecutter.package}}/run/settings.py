"""The types and ranges of the keys users set: one table, checked before the run directory exists
(by the run guard) and again in each task. Every refusal names the key, the value and an example."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigurationError
from .given_values import check_given_values


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
        if not math.isfinite(value):  # nan and inf: the one finite-number rule of given_values names them
            return None
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
