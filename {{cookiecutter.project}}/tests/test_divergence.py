"""A run whose loss becomes nan or infinite stops there, saying so, and keeps only what came before."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback

from {{ cookiecutter.package }}.callbacks import StopOnNonFiniteLoss, TrainingDiverged

from conftest import FAST, fit


class BreakWeightsAtEpoch(Callback):
    """Turn every weight into `value` when epoch `epoch` starts: what a too-high learning rate ends in."""

    def __init__(self, epoch: int, value: float = math.nan) -> None:
        self.epoch, self.value = epoch, value

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.fill_(self.value)


@pytest.mark.parametrize(
    ("value", "check_every_n_steps"),
    [
        (math.nan, None),  # FAST logs every step: read at once
        (math.nan, 100),  # read at the end of the epoch, still naming the first step
        pytest.param(math.inf, None, marks=pytest.mark.slow),
    ],
)
def test_a_run_stops_at_the_first_non_finite_loss_keeping_only_the_checkpoints_from_before(
    compose_config, value, check_every_n_steps
):
    config = compose_config(
        [*FAST, "trainer.max_epochs=3", "callbacks.last_checkpoint.min_seconds_between_writes=0"]
    )
    with pytest.raises(
        TrainingDiverged, match=r"the training loss became (nan|inf) at epoch 1, step 4"
    ) as stop:
        stop_on_nan = StopOnNonFiniteLoss(learning_rate=1e-3, check_every_n_steps=check_every_n_steps)
        fit(config, BreakWeightsAtEpoch(1, value), stop_on_nan)
    assert "Lower optimizer.lr (it is 0.001)" in str(stop.value)
    checkpoints = Path(config.paths.output_dir) / "checkpoints"
    assert sorted(path.name for path in checkpoints.iterdir()) == ["epoch_000.ckpt", "last.ckpt"]
    assert "Checkpoints from before it are kept: " in str(stop.value)
    for path in checkpoints.iterdir():
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert state["epoch"] == 0
        assert all(torch.isfinite(weight).all() for weight in state["state_dict"].values())


def test_a_validation_loss_that_is_not_finite_stops_the_run_before_its_checkpoints(compose_config):
    class BreakWeightsBeforeValidation(Callback):
        def on_validation_start(self, trainer, pl_module) -> None:
            if not trainer.sanity_checking:
                with torch.no_grad():
                    next(pl_module.parameters()).fill_(math.nan)

    config = compose_config([*FAST, "trainer.max_epochs=1"])
    with pytest.raises(TrainingDiverged, match="the validation loss became nan at epoch 0, step 3"):
        fit(config, BreakWeightsBeforeValidation(), StopOnNonFiniteLoss())
    assert not (Path(config.paths.output_dir) / "checkpoints").exists()


def test_a_finite_run_is_not_stopped(compose_config):
    trainer, _ = fit(compose_config([*FAST, "trainer.max_epochs=1"]), StopOnNonFiniteLoss())
    assert trainer.current_epoch == 1 and not trainer.interrupted
