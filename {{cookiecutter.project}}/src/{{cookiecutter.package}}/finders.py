"""Lightning's learning-rate and batch-size finders (lightning.pytorch.tuner.Tuner) on this project's
model: rates that keep the fine-tuning strategy's ratios between parameter groups, a batch size bounded by
the training split, and the picture of the loss against the rate."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.tuner import Tuner
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from .pictures import new_figure, place_axes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)


@contextlib.contextmanager
def rates_in_group_ratios() -> Iterator[None]:
    """While open, every optimizer step runs each parameter group at its rate times its `lr_scale`.

    Lightning's range test sets one rate for every group, and its schedule replaces ours, which is what
    applies the scales (layer-wise decay, backbone_lr_scale: finetune.parameter_groups). With the scales
    put on for each step and taken off after it, the rate the finder records and suggests means
    `optimizer.lr` as a training run reads it, and the groups keep the ratios training gives them.
    """
    unscaled: dict[int, list[float]] = {}

    def put_scales_on(optimizer, args, kwargs) -> None:
        unscaled[id(optimizer)] = [group["lr"] for group in optimizer.param_groups]
        for group in optimizer.param_groups:
            group["lr"] = group["lr"] * group.get("lr_scale", 1.0)

    def take_scales_off(optimizer, args, kwargs) -> None:
        for group, rate in zip(optimizer.param_groups, unscaled.pop(id(optimizer)), strict=True):
            group["lr"] = rate

    handles = [
        register_optimizer_step_pre_hook(put_scales_on),
        register_optimizer_step_post_hook(take_scales_off),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def find_learning_rate(
    trainer: Trainer, model: LightningModule, datamodule: LightningDataModule, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """Run Tuner.lr_find with `settings` (its arguments: min_lr, max_lr, num_training, mode,
    early_stop_threshold); return its suggestion (steepest_fall; None when the curve has too few finite
    points), the rate of each parameter group at it, and the curve: the smoothed training loss at each
    rate."""
    # The test's steps may span many epochs of a small training split: the run's max_epochs must not
    # end it early (the finder stops after num_training steps).
    trainer.fit_loop.max_epochs = max(trainer.max_epochs or 1, int(settings["num_training"]))
    with rates_in_group_ratios():
        finder = Tuner(trainer).lr_find(model, datamodule=datamodule, update_attr=False, **settings)
    logarithmic = settings["mode"] == "exponential"
    suggestion = steepest_fall(finder.results["lr"], finder.results["loss"], logarithmic)
    groups = trainer.optimizers[0].param_groups if trainer.optimizers else []
    return {
        "suggestion": suggestion,
        # Lightning's own: the steepest fall per unit of rate, which on an exponential range favours
        # the small rates where the loss has only begun to fall.
        "lightning_suggestion": finder.suggestion(),
        "group_rates": {
            group.get("name", str(index)): suggestion * group.get("lr_scale", 1.0)
            for index, group in enumerate(groups)
        }
        if suggestion is not None
        else {},
        "curve": {
            "lr": [float(rate) for rate in finder.results["lr"]],
            # json has no nan: a step whose loss was not finite has none
            "loss": [float(loss) if math.isfinite(loss) else None for loss in finder.results["loss"]],
        },
    }


def steepest_fall(
    rates: Sequence[float],
    losses: Sequence[float],
    logarithmic: bool,
    skip_begin: int = 10,
    skip_end: int = 1,
) -> float | None:
    """The rate where the loss falls fastest, per decade of rate on an exponential range (as the range
    test steps and the picture shows it), per unit of rate on a linear one; None with fewer than two
    finite losses. The first `skip_begin` and last `skip_end` steps are left out, as Lightning does."""
    kept = [
        (rate, loss)
        for rate, loss in zip(rates[skip_begin:-skip_end], losses[skip_begin:-skip_end], strict=True)
        if math.isfinite(loss)
    ]
    if len(kept) < 2:
        return None
    positions = np.log10([rate for rate, _ in kept]) if logarithmic else np.array([rate for rate, _ in kept])
    slopes = np.gradient(np.array([loss for _, loss in kept]), positions)
    return float(kept[int(np.argmin(slopes))][0])


def largest_batch_size(trainer: Trainer, datamodule: LightningDataModule) -> int:
    """The largest batch each process can take: its share of the training split (the data module
    refuses a larger one, which would train on nothing: incomplete batches are dropped)."""
    return len(datamodule.training_labels()) // trainer.world_size


def find_batch_size(
    trainer: Trainer, model: LightningModule, datamodule: LightningDataModule, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """Run Tuner.scale_batch_size with `settings` (its arguments: mode, init_val, max_trials,
    steps_per_trial, max_val, margin), max_val bounded by largest_batch_size; the data module keeps
    the size found. Return it, the bound and the trials it was given."""
    settings = dict(settings)
    bound = largest_batch_size(trainer, datamodule)
    settings["max_val"] = min(settings.get("max_val") or bound, bound)
    settings["init_val"] = min(settings["init_val"], settings["max_val"])
    if settings["mode"] == "power":
        # Lightning's doubling passes max_val (it reports the first size above it, untried), so stop
        # after the last doubling within it: the size reported is one that trained.
        doublings = int(math.log2(settings["max_val"] / settings["init_val"]))
        settings["max_trials"] = min(settings["max_trials"], doublings + 1)
    if isinstance(trainer.accelerator, CPUAccelerator):
        log.info(
            "On the CPU no batch is too large for memory (the operating system swaps or stops the "
            "process instead): the batch-size finder doubles the batch up to %d (the bound: "
            "scale_batch_size.max_trials=%d trials from %d, at most %d).",
            min(settings["init_val"] * 2 ** (settings["max_trials"] - 1), settings["max_val"]),
            settings["max_trials"],
            settings["init_val"],
            settings["max_val"],
        )
    found = Tuner(trainer).scale_batch_size(model, datamodule=datamodule, **settings)
    found = min(found, settings["max_val"])  # whatever the mode, never above the bound
    datamodule.batch_size = found
    return {"batch_size": found, "max_val": settings["max_val"], "max_trials": settings["max_trials"]}


def short_number(value: float) -> str:
    """`value` with two significant digits, as a person types it: 3.2e-4."""
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def learning_rate_figure(
    curve: Mapping[str, list], suggestion: float | None, logarithmic: bool, title: str
) -> Figure:
    """The smoothed training loss against the rate, the suggestion marked in red."""
    figure = new_figure(6.4, 4.4)
    axes = place_axes(figure, 0.8, 0.6, 5.3, 3.3)
    points = [(rate, loss) for rate, loss in zip(curve["lr"], curve["loss"], strict=True) if loss is not None]
    if points:
        axes.plot(*zip(*points, strict=True), color="tab:blue")
    if logarithmic:
        axes.set_xscale("log")
    if suggestion is not None:
        loss = dict(points).get(suggestion)
        axes.axvline(suggestion, color="tab:red", linestyle="--", linewidth=1)
        if loss is not None:
            axes.plot([suggestion], [loss], marker="o", markersize=8, color="tab:red")
        axes.plot([], [], color="tab:red", linestyle="--", label=f"optimizer.lr={short_number(suggestion)}")
        axes.legend(loc="upper left", fontsize=9)
    axes.set_xlabel("optimizer.lr")
    axes.set_ylabel("training loss (smoothed)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    return figure
