"""The scripts as a user runs them: train then eval, sweeps, DDP on CPU, and clear errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import FAST, read_results, run_script


def test_help_lists_every_config_group(tmp_path):
    result = run_script("train.py", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for group in ("data", "model", "optimizer", "scheduler", "trainer", "callbacks", "logger", "debug"):
        assert f"{group}: " in result.stdout


def test_train_then_eval_reproduces_the_test_metric(tmp_path):
    trained = run_script("train.py", *FAST, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    [results] = read_results(tmp_path / "logs" / "train")
    assert results["output_dir"] in trained.stdout and "results.json" in trained.stdout
    assert (
        torch.load(results["best_checkpoint"], weights_only=True)["hyper_parameters"]["backbone"]
        == "test_resnet"
    )

    same_test_batches = next(arg for arg in FAST if "limit_test_batches" in arg)
    evaluated = run_script(
        "eval.py", f"ckpt_path={results['best_checkpoint']}", same_test_batches, cwd=tmp_path
    )
    assert evaluated.returncode == 0, evaluated.stderr
    [evaluation] = read_results(tmp_path / "logs" / "eval")
    assert evaluation["metrics"]["test/acc"] == pytest.approx(results["metrics"]["test/acc"], abs=1e-6)
    assert evaluation["metrics"]["test/loss"] == pytest.approx(results["metrics"]["test/loss"], rel=1e-5)


def test_multirun_gives_each_job_its_own_directory_and_results(tmp_path):
    result = run_script("train.py", "-m", "optimizer=adamw,sgd", *FAST, "trainer.max_epochs=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = read_results(tmp_path / "logs" / "train" / "multiruns")
    assert len(runs) == 2
    assert len({run["output_dir"] for run in runs}) == 2
    optimizers = [OmegaConf.load(Path(run["output_dir"]) / "config.yaml").optimizer.opt for run in runs]
    assert sorted(optimizers) == ["adamw", "sgd"]


def test_ddp_sim_logs_each_metric_once_and_writes_one_result(tmp_path):
    result = run_script("train.py", "trainer=ddp_sim", "logger=csv", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [results] = read_results(tmp_path / "logs")
    run_dir = Path(results["output_dir"])
    with open(run_dir / "csv" / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    assert sum(1 for row in rows if row["val/acc"]) == 2  # one row per epoch, not one per process
    assert sum(1 for row in rows if row["test/acc"]) == 1
    checkpoints = sorted(path.name for path in (run_dir / "checkpoints").iterdir())
    assert checkpoints == sorted([Path(results["best_checkpoint"]).name, "last.ckpt"])
    # The synced test metrics of the logging callbacks draw no sync_dist advice from Lightning.
    assert "It is recommended to use `self.log(" not in result.stdout + result.stderr


def test_unknown_backbone_fails_with_a_suggestion_and_no_traceback(tmp_path):
    result = run_script("train.py", "model.backbone=resnet5O", cwd=tmp_path)
    assert result.returncode == 1
    assert "Unknown backbone 'resnet5O'" in result.stderr and "'resnet50'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_pretrained_weights_without_network_say_how_to_load_a_local_file(tmp_path):
    offline = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path / "torch")}
    result = run_script(
        "train.py", "model.backbone=test_resnet", "model.pretrained=true", cwd=tmp_path, env=offline
    )
    assert result.returncode == 1
    assert "model.weights=/path/to/" in result.stderr and "model.pretrained=false" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_eval_never_writes_into_a_training_run_directory(tmp_path):
    trained = run_script("train.py", "debug=limit", "model.backbone=test_resnet", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    [results] = read_results(tmp_path / "logs")
    before = (Path(results["output_dir"]) / "results.json").read_text()
    evaluated = run_script(
        "eval.py",
        f"ckpt_path={results['best_checkpoint']}",
        f"hydra.run.dir={results['output_dir']}",
        cwd=tmp_path,
    )
    assert evaluated.returncode == 1 and "already holds the results" in evaluated.stderr
    assert (Path(results["output_dir"]) / "results.json").read_text() == before


@pytest.mark.slow
def test_default_training_reaches_98_percent_test_accuracy(tmp_path):
    result = run_script("train.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [results] = read_results(tmp_path / "logs")
    assert results["metrics"]["test/acc"] >= 0.98
