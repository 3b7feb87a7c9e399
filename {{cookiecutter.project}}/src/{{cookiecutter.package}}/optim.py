"""Optimizers and learning-rate schedules from timm's factories, configured with plain values."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from timm.optim import create_optimizer_v2, list_optimizers
from timm.scheduler import create_scheduler_v2
from timm.scheduler.scheduler import Scheduler
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

from .errors import ConfigurationError, check_unknown_keys

# "none" keeps optimizer.lr; it is timm's constant schedule, so per-group lr_scale still applies.
CONSTANT_SCHEDULES = ("none", "constant", None)
SCHEDULE_CHOICES = "Use cosine, step, multistep, poly, tanh, plateau or none."


def check_arguments(function, group: str, arguments: dict[str, Any]) -> None:
    """Refuse config keys of `group` that `function` (the factory they feed) has no parameter for."""
    taken = [
        name
        for name in inspect.signature(function).parameters
        if name not in ("optimizer", "model_or_params")
    ]
    check_unknown_keys(group, arguments, taken)


def build_optimizer(
    parameter_groups: list[dict[str, Any]], opt: str, lr: float, weight_decay: float = 0.0, **kwargs: Any
) -> Optimizer:
    """Create `opt` (any name from timm.optim.list_optimizers()) over `parameter_groups`.

    The groups come from finetune.parameter_groups (classifier and backbone apart, norm and bias
    parameters without weight decay, one group per layer with layer decay); `lr` and `weight_decay`
    are the rate and decay of the groups that do not set their own. Each group's `lr_scale` is
    applied by the schedule (see build_scheduler).
    """
    if opt.lower() not in list_optimizers():
        raise ConfigurationError(
            f"Unknown optimizer.opt={opt!r}. Choose one of timm.optim.list_optimizers(), e.g. "
            "adamw, sgd, adam, lamb, lion."
        )
    try:
        return create_optimizer_v2(parameter_groups, opt=opt, lr=lr, weight_decay=weight_decay, **kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            f"optimizer options lr={lr}, weight_decay={weight_decay}, {kwargs} do not fit {opt!r}: {error}"
        ) from error


def build_scheduler(
    optimizer: Optimizer, num_epochs: int, updates_per_epoch: int, sched: str | None = None, **kwargs: Any
) -> tuple[Scheduler | ReduceLROnPlateau, dict[str, Any]]:
    """Create the learning-rate schedule and the Lightning settings it is stepped with.

    timm schedules (cosine, step, multistep, poly, tanh, constant, and "none" = constant) are stepped
    after every optimizer update and span `num_epochs`: with `warmup_prefix` the decay starts after
    the warmup and fits in the epochs that remain. They apply each group's `lr_scale`. "plateau" is
    torch's ReduceLROnPlateau, stepped once per epoch on `monitor`; it knows nothing of `lr_scale`,
    so build_optimization starts each group at its scaled rate.
    """
    if sched == "plateau":
        check_arguments(plateau_scheduler, "scheduler", kwargs)
        return plateau_scheduler(optimizer, **kwargs)
    if sched in CONSTANT_SCHEDULES:
        sched = "constant"
    check_arguments(create_scheduler_v2, "scheduler", kwargs)
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
    except (ValueError, AssertionError) as error:
        raise ConfigurationError(f"scheduler.sched={sched!r}: {error} {SCHEDULE_CHOICES}") from error
    if scheduler is None:
        raise ConfigurationError(f"Unknown scheduler.sched={sched!r}. {SCHEDULE_CHOICES}")
    return scheduler, {"interval": "step"}


def plateau_scheduler(
    optimizer: Optimizer,
    *,
    monitor: str,
    plateau_mode: str,
    decay_rate: float,
    patience_epochs: int,
    min_lr: float,
    threshold: float = 1e-4,
) -> tuple[ReduceLROnPlateau, dict[str, Any]]:
    """torch's ReduceLROnPlateau on `monitor` and the Lightning settings it is stepped with (per epoch).

    Each group starts at its own rate (see build_optimization) and never falls below `min_lr` times its
    `lr_scale`. The settings come from configs/scheduler/plateau.yaml, the one place of their defaults.
    """
    if plateau_mode not in ("max", "min"):
        raise ConfigurationError(
            f"scheduler.plateau_mode={plateau_mode!r}: use max (accuracy) or min (loss)."
        )
    scheduler = ReduceLROnPlateau(
        optimizer,
        mode=plateau_mode,
        factor=decay_rate,
        patience=patience_epochs,
        threshold=threshold,
        min_lr=[min_lr * group.get("lr_scale", 1.0) for group in optimizer.param_groups],
    )
    return scheduler, {"interval": "epoch", "monitor": monitor, "strict": True}


def build_optimization(
    parameter_groups: list[dict[str, Any]],
    optimizer: Mapping[str, Any],
    scheduler: Mapping[str, Any] | None,
    num_epochs: int,
    updates_per_epoch: int,
) -> dict[str, Any]:
    """The optimizer over `parameter_groups` and its schedule, as LightningModule.configure_optimizers
    returns them, from the `optimizer` and `scheduler` config groups' settings.

    Each group's rate is set once: timm's schedules apply the groups' `lr_scale` on every update;
    ReduceLROnPlateau knows no scales, so for it each group starts at `lr` times its scale.
    """
    settings, schedule = dict(optimizer), dict(scheduler or {})
    if schedule.get("sched") == "plateau":
        for group in parameter_groups:
            group["lr"] = group["initial_lr"] = settings["lr"] * group.get("lr_scale", 1.0)
    built = build_optimizer(parameter_groups, **settings)
    lr_scheduler, stepping = build_scheduler(
        built, num_epochs=num_epochs, updates_per_epoch=updates_per_epoch, **schedule
    )
    return {"optimizer": built, "lr_scheduler": {"scheduler": lr_scheduler, "name": "lr", **stepping}}
