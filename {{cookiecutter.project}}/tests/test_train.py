"""Training in-process: the wiring runs, seeds reproduce, and each logger writes its files."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback

from {{ cookiecutter.package }}.errors import ConfigurationError
from {{ cookiecutter.package }}.training import train

from conftest import FAST, fit


def test_fast_dev_run_on_cpu_runs_every_stage(compose_config, tmp_path):
    results = train(compose_config(["debug=fdr", "model.backbone=test_resnet"]))
    assert {"train/loss", "val/loss", "test/acc"} <= set(results["metrics"])
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == results
    assert (tmp_path / "run" / "config.yaml").is_file()


def test_same_seed_gives_the_same_validation_loss(compose_config, tmp_path):
    def val_loss(run: str) -> float:
        config = compose_config([*FAST, "test=false", "seed=3"])
        config.paths.output_dir = str(tmp_path / run)
        return train(config)["metrics"]["val/loss"]

    assert val_loss("first") == val_loss("second")


def test_a_second_run_never_overwrites_the_results_of_the_first(compose_config, tmp_path):
    config = compose_config(["debug=fdr", "model.backbone=test_resnet"])
    train(config)
    before = (tmp_path / "run" / "results.json").read_text()
    with pytest.raises(ConfigurationError, match="already holds the results"):
        train(config)
    assert (tmp_path / "run" / "results.json").read_text() == before


def test_last_checkpoint_is_the_final_step_and_resuming_continues_the_new_schedule(compose_config, tmp_path):
    first = train(compose_config([*FAST, "test=false"]))
    assert torch.load(first["last_checkpoint"], weights_only=True)["global_step"] == 6  # 2 epochs x 3 batches

    config = compose_config(
        [*FAST, "test=false", "trainer.max_epochs=3", f"ckpt_path={first['last_checkpoint']}"]
    )
    config.paths.output_dir = str(tmp_path / "resumed")
    resumed = train(config)
    assert resumed["epochs"] == 3
    # The learning rate of the third epoch follows a 3-epoch cosine, not the 2-epoch one that had ended.
    assert resumed["metrics"]["lr/backbone"] > 1e-4


class LastCheckpointSteps(Callback):
    """The optimizer steps that last.ckpt holds at the start of each training epoch (None: no file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.steps: list[int | None] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        exists = self.path.exists()
        self.steps.append(torch.load(self.path, weights_only=True)["global_step"] if exists else None)


@pytest.mark.parametrize(
    ("overrides", "seen_at_epoch_starts", "final_step"),
    [
        # 3 epochs of 3 steps in well under a minute: only the final epoch writes last.ckpt.
        ([], [None, None, None], 9),
        # min_seconds_between_writes=0: every epoch, as Lightning's ModelCheckpoint does.
        (["callbacks.last_checkpoint.min_seconds_between_writes=0"], [None, 3, 6], 9),
        # Early stopping after the 2nd epoch makes that epoch the final one (min_delta: never improves).
        (["callbacks.early_stopping.patience=1", "callbacks.early_stopping.min_delta=2"], [None, None], 6),
    ],
)
def test_last_checkpoint_skips_epochs_within_a_minute_of_its_last_write_but_never_the_final_one(
    compose_config, tmp_path, overrides, seen_at_epoch_starts, final_step
):
    config = compose_config([*FAST, "trainer.max_epochs=3", *overrides])
    probe = LastCheckpointSteps(tmp_path / "run" / "checkpoints" / "last.ckpt")
    trainer, _ = fit(config, probe)
    assert probe.steps == seen_at_epoch_starts
    assert torch.load(probe.path, weights_only=True)["global_step"] == trainer.global_step == final_step


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_epochs=0", "trainer.max_epochs=0 must be at least 1; set e.g. trainer.max_epochs=10"),
        ("ckpt_path=/nonexistent/last.ckpt", "no such checkpoint file"),
        ("trainer.precision=bogus", "Precision 'bogus' is invalid"),
        ("float32_matmul_precision=medum", "use one of highest, high, medium"),
        ("data.val_fraction=0", "data.val_fraction=0 must be above 0"),
        ("data.image_size=0", "data.image_size=0 must be at least 1"),
        ("optimizer.lr=-1", "optimizer.lr=-1 must be at least 0; set e.g. optimizer.lr=1e-3"),
    ],
)
def test_bad_settings_fail_with_a_message_naming_them(compose_config, override, message):
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        train(compose_config([*FAST, override]))


def test_weighted_sampler_under_ddp_is_refused_before_any_process_starts(compose_config):
    with pytest.raises(ConfigurationError, match=r"data.weighted_sampler=true works on one device only"):
        train(compose_config([*FAST, "trainer=ddp_sim", "data.weighted_sampler=true"]))


def test_csv_logger_writes_per_epoch_metrics(compose_config, tmp_path):
    train(compose_config([*FAST, "logger=csv"]))
    header, *rows = (tmp_path / "run" / "csv" / "metrics.csv").read_text().splitlines()
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "test/acc"} <= set(header.split(","))
    assert len([row for row in rows if row.split(",")[header.split(",").index("val/acc")]]) == 2


def test_tensorboard_logger_writes_event_files(compose_config, tmp_path):
    config = compose_config([*FAST, "logger=tensorboard"])
    if not (importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")):
        with pytest.raises(ConfigurationError, match=r"pip install -e '\.\[tensorboard\]'"):
            train(config)
        return
    train(config)
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


def test_wandb_logs_offline_without_waiting_for_a_login(compose_config, tmp_path, monkeypatch, caplog):
    for variable in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-home"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = compose_config([*FAST, "logger=wandb"])
    if importlib.util.find_spec("wandb") is None:
        with pytest.raises(ConfigurationError, match=r"pip install -e '\.\[wandb\]'"):
            train(config)
        return
    train(config)
    assert "logging offline" in caplog.text
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))


def test_malloc_tuning_applies_where_glibc_is_the_c_library():
    import platform

    from {{ cookiecutter.package }}.run.allocator import keep_freed_memory_for_reuse

    on_glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory_for_reuse() == on_glibc
