"""A run directory belongs to one run: a folder holding anything else is refused untouched, two
processes never share one, and a run stopped by Ctrl-C keeps only what it can continue from."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from {{ cookiecutter.package }}.run.checkpoints import epochs_trained

from conftest import FAST, PROJECT_ROOT, read_results, run_script


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_a_folder_holding_other_files_is_refused_and_left_as_it_was(tmp_path):
    folder = tmp_path / "experiments"
    (folder / "notes").mkdir(parents=True)
    (folder / "config.yaml").write_text("mine: true\n")
    (folder / "notes" / "plan.txt").write_text("try sgd next\n")
    before = snapshot(folder)
    result = run_script("train.py", *FAST, f"hydra.run.dir={folder}", cwd=tmp_path)
    assert result.returncode == 1
    assert f"Error: {folder} is not empty (config.yaml, notes)" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(folder) == before
    assert sorted(path.name for path in folder.iterdir()) == ["config.yaml", "notes"]


def test_the_first_slurm_task_accepts_what_the_other_tasks_wrote_but_nothing_else(tmp_path):
    # The tasks of a SLURM job all know the run directory from their start (runs/slurm-<job id>) and
    # Hydra writes .hydra/ and the task's log in each: the first task must not take those for another
    # run's files (it refused, and the other task waited for it forever).
    from {{ cookiecutter.package }}.errors import ConfigurationError
    from {{ cookiecutter.package }}.run.directory import check_run_dir_is_free

    (tmp_path / ".hydra").mkdir()
    (tmp_path / "train.log").write_text("task 1 started\n")
    check_run_dir_is_free(tmp_path, written_by_other_tasks=(".hydra", "train.log"))
    (tmp_path / "config.yaml").write_text("mine: true\n")
    with pytest.raises(ConfigurationError, match=r"is not empty \(config.yaml\)"):
        check_run_dir_is_free(tmp_path, written_by_other_tasks=(".hydra", "train.log"))


def test_two_runs_started_together_in_one_directory_leave_it_to_one_of_them(tmp_path):
    """The second is refused before it writes anything: the directory holds one run's config and results."""
    started = [
        subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "train.py"), *FAST, f"seed={seed}", "hydra.run.dir=shared"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    ended = [(process.wait(timeout=600), process.stderr.read()) for process in started]
    assert sorted(code for code, _ in ended) == [0, 1], ended
    [winner] = [seed for seed, (code, _) in zip((1, 2), ended, strict=True) if code == 0]
    [refusal] = [error for code, error in ended if code == 1]
    assert "shared is in use by another run that is still going" in refusal, refusal
    run_dir = tmp_path / "shared"
    assert OmegaConf.load(run_dir / "config.yaml").seed == winner
    assert OmegaConf.load(run_dir / ".hydra" / "config.yaml").seed == winner
    assert len(read_results(run_dir)) == 1
    assert not (run_dir / ".run.lock").exists()  # the lock goes with the run that held it


def interrupt(tmp_path: Path, ready: str, *overrides: str) -> tuple[int, str, Path]:
    """Start a training, press Ctrl-C (SIGINT) once `ready` exists in its run directory; return the
    exit status, stderr and the run directory."""
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "train.py"), *overrides, f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # A process started in the background ignores SIGINT; a terminal's Ctrl-C does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not (run_dir / ready).exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=300), process.stderr.read(), run_dir


# Long epochs (batches of 8) and many of them: the run is surely still training when Ctrl-C comes.
LONG_RUN = ["model.backbone=test_resnet", "trainer.max_epochs=50", "callbacks.progress_bar=null"]


def test_ctrl_c_before_the_first_checkpoint_removes_the_run_directory(tmp_path):
    code, stderr, run_dir = interrupt(tmp_path, "config.yaml", *LONG_RUN, "data.batch_size=8")
    assert code == 1
    assert stderr.strip().endswith("before the first checkpoint: nothing to continue from."), stderr
    assert "Error: Stopped by Ctrl-C at epoch 0" in stderr
    assert not run_dir.exists()


@pytest.mark.slow
def test_ctrl_c_after_a_checkpoint_keeps_the_run_and_says_how_to_continue_it(tmp_path):
    code, stderr, run_dir = interrupt(tmp_path, "checkpoints/last.ckpt", *LONG_RUN)
    last = run_dir / "checkpoints" / "last.ckpt"
    assert code == 1
    assert (
        f"holds the last saved state. Continue with the same command plus resume=auto (or ckpt_path={last})."
        in stderr
    )
    assert last.is_file() and not (run_dir / "results.json").exists()
    # What the message offers, for one more epoch so that the test stays short.
    epochs = epochs_trained(torch.load(last, weights_only=True, map_location="cpu")) + 1
    continued = run_script(
        "train.py",
        *LONG_RUN,
        f"trainer.max_epochs={epochs}",
        f"hydra.run.dir={run_dir}",
        f"ckpt_path={last}",
        cwd=tmp_path,
    )
    assert continued.returncode == 0, continued.stderr
    assert read_results(run_dir)[0]["epochs"] == epochs


def test_resuming_with_fewer_epochs_than_the_checkpoint_trained_is_refused_before_any_training(tmp_path):
    first = run_script("train.py", *FAST, "test=false", "hydra.run.dir=first", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    result = run_script(
        "train.py", *FAST, "trainer.max_epochs=1", f"ckpt_path={last}", "hydra.run.dir=second", cwd=tmp_path
    )
    assert result.returncode == 1
    assert (
        f"Error: ckpt_path='{last}' has trained 2 epochs and trainer.max_epochs=1 is fewer: nothing would "
        "be trained. Set trainer.max_epochs above 2"
    ) in result.stderr
    assert not (tmp_path / "second").exists()


@pytest.mark.slow
def test_resume_auto_with_a_run_directory_continues_that_run_and_refuses_one_of_other_settings(tmp_path):
    for name in ("older", "newer"):  # two unfinished runs of one config: a last.ckpt and no results.json
        made = run_script("train.py", *FAST, "test=false", f"hydra.run.dir=runs/{name}", cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        (tmp_path / "runs" / name / "results.json").unlink()
    newer = snapshot(tmp_path / "runs" / "newer")

    other = run_script(
        "train.py",
        *FAST,
        "test=false",
        "optimizer.lr=0.01",
        "hydra.run.dir=runs/newer",
        "resume=auto",
        cwd=tmp_path,
    )
    assert other.returncode == 1
    assert (
        "resume=auto: runs/newer holds a run made with other settings (optimizer.lr=0.002->0.01)"
        in other.stderr
    )
    assert snapshot(tmp_path / "runs" / "newer") == newer

    same = run_script(
        "train.py", *FAST, "test=false", "hydra.run.dir=runs/older", "resume=auto", cwd=tmp_path
    )
    assert same.returncode == 0, same.stderr
    assert f"resume=auto: continuing {tmp_path / 'runs' / 'older'}" in same.stdout
    assert (tmp_path / "runs" / "older" / "results.json").is_file()
    assert snapshot(tmp_path / "runs" / "newer") == newer


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["hydra.run.dir=a_file"], "hydra.run.dir=a_file is a file; name a new or empty directory."),
        (
            ["resume=auto", "ckpt_path=a_file"],
            "resume=auto and ckpt_path=a_file both say where to start: use resume=auto to continue",
        ),
    ],
)
def test_a_run_directory_setting_that_cannot_work_is_refused_touching_nothing(tmp_path, overrides, message):
    (tmp_path / "a_file").write_text("mine\n")
    result = run_script("train.py", *FAST, *overrides, cwd=tmp_path)
    assert result.returncode == 1
    assert f"Error: {message}" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a_file"]
    assert (tmp_path / "a_file").read_text() == "mine\n"


def test_a_log_folder_under_the_home_directory_is_written_there_not_into_a_folder_named_tilde(tmp_path):
    home = tmp_path / "home"
    result = run_script(
        "train.py", *FAST, "test=false", "paths.log_dir='~/logs'", cwd=tmp_path, env={"HOME": str(home)}
    )
    assert result.returncode == 0, result.stderr
    assert len(read_results(home / "logs")) == 1
    assert not (tmp_path / "~").exists()
