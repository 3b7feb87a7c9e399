"""Optimizers and learning-rate schedules from timm's factories, configured with plain values."""

from __future__ import annotations

import inspect
from typing import Any

from timm.optim import create_optimizer_v2, list_optimizers
from timm.scheduler import create_scheduler_v2
from torch import nn
from torch.optim import Optimizer

from .errors import ConfigurationError

NO_SCHEDULE = ("none", None)


def _check_arguments(function, group: str, arguments: dict[str, Any]) -> None:
    """Raise ConfigurationError naming config keys that `function` has no parameter for."""
    parameters = inspect.signature(function).parameters
    unknown = sorted(set(arguments) - set(parameters))
    if unknown:
        known = ", ".join(name for name in parameters if name not in ("optimizer", "model_or_params"))
        raise ConfigurationError(
            f"Unknown {group} option(s) {unknown} for {function.__name__}; it takes: {known}."
        )


def build_optimizer(model: nn.Module, opt: str, lr: float, **kwargs: Any) -> Optimizer:
    """Create `opt` (any name from timm.optim.list_optimizers()) over the model's parameters.

    timm's factory puts norm and bias parameters in a group without weight decay.
    """
    if opt.lower() not in list_optimizers():
        raise ConfigurationError(
            f"Unknown optimizer.opt={opt!r}. Choose one of timm.optim.list_optimizers(), e.g. "
            "adamw, sgd, adam, lamb, lion."
        )
    try:
        return create_optimizer_v2(model, opt=opt, lr=lr, **kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            f"optimizer options lr={lr}, {kwargs} do not fit {opt!r}: {error}"
        ) from error


def build_scheduler(
    optimizer: Optimizer, sched: str | None, num_epochs: int, updates_per_epoch: int, **kwargs: Any
):
    """Create a timm scheduler stepped per optimizer update, or None for a constant learning rate.

    The whole schedule spans `num_epochs`: with `warmup_prefix` the decay starts after the warmup and
    fits in the epochs that remain.
    """
    if sched in NO_SCHEDULE:
        return None
    _check_arguments(create_scheduler_v2, "scheduler", kwargs)
    if kwargs.get("warmup_prefix"):
        num_epochs = max(num_epochs - kwargs.get("warmup_epochs", 0), 1)
    try:
        scheduler, _ = create_scheduler_v2(
            optimizer,
            sched=sched,
            num_epochs=num_epochs,
            step_on_epochs=False,
            updates_per_epoch=updates_per_epoch,
            **kwargs,
        )
    except ValueError as error:
        raise ConfigurationError(
            f"scheduler.sched={sched!r}: {error} Use cosine, step, multistep, poly, tanh, constant or none."
        ) from error
    return scheduler
