"""A sweep directory belongs to one sweep: refused, untouched, to anything else; a killed sweep continues
with resume=auto to the results an uninterrupted one gets."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import FAST, PROJECT_ROOT, run_script

SWEEP = ["optimizer.lr=1e-3,3e-3"]


def snapshot(directory: Path) -> dict[str, tuple[int, str]]:
    """Every file below `directory`: its modification time and a hash of its content."""
    return {
        str(path.relative_to(directory)): (
            path.stat().st_mtime_ns,
            hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> Path:
    """A finished 2-job sweep, made once; tests copy it before changing anything."""
    cwd = tmp_path_factory.mktemp("finished")
    result = run_script("train.py", "-m", *SWEEP, *FAST, "hydra.sweep.dir=sweep", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "sweep"


def refused(result: subprocess.CompletedProcess, *phrases: str) -> None:
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for phrase in phrases:
        assert phrase in lines[0]


@pytest.mark.parametrize(
    ("arguments", "phrases"),
    [
        ([*SWEEP], ["holds this sweep already (2 of 2 jobs finished)", "resume=auto"]),
        (["optimizer=adamw,sgd"], ["holds another sweep", "command-line overrides", "new hydra.sweep.dir"]),
        ([*SWEEP, "hydra.sweep.subdir=job_${hydra.job.num}"], ["holds another sweep", "subdir"]),
        ([*SWEEP, "resume=yes"], ["resume='yes'", "resume=auto"]),
        ([*SWEEP, "hparams_search=optuna", "resume=auto"], ["Optuna search continues", "storage"]),
        (["optimizer.lr=1e-3,3e-3,1e-2", "resume=auto"], ["holds another sweep"]),
    ],
    ids=[
        "same-sweep-without-resume",
        "other-overrides",
        "other-subdir",
        "resume-yes",
        "optuna-resume",
        "resume-other",
    ],
)
def test_a_sweep_directory_is_refused_to_another_sweep_before_anything_is_written(
    finished_sweep, arguments, phrases
):
    before = snapshot(finished_sweep)
    result = run_script(
        "train.py", "-m", *arguments, *FAST, f"hydra.sweep.dir={finished_sweep}", cwd=finished_sweep.parent
    )
    refused(result, *phrases)
    assert snapshot(finished_sweep) == before


def test_a_sweep_directory_made_from_other_config_files_is_refused(finished_sweep, tmp_path):
    edited = shutil.copytree(finished_sweep, tmp_path / "edited")
    saved = yaml.safe_load((edited / "multirun.yaml").read_text())
    saved["seed"] = 7  # as if configs/train.yaml had been edited since
    (edited / "multirun.yaml").write_text(yaml.safe_dump(saved))
    before = snapshot(edited)
    result = run_script(
        "train.py", "-m", *SWEEP, *FAST, "resume=auto", f"hydra.sweep.dir={edited}", cwd=tmp_path
    )
    refused(result, "holds another sweep", "config.seed")
    assert snapshot(edited) == before


@pytest.mark.parametrize("content", ["a file of the user", "a single run", "a file"])
def test_a_sweep_directory_that_holds_no_sweep_is_refused_untouched(tmp_path, content):
    target = tmp_path / "target"
    if content == "a file":
        target.write_text("notes")
    else:
        target.mkdir()
        (target / "notes.txt").write_text("mine")
        if content == "a single run":
            (target / ".hydra").mkdir()
            (target / "results.json").write_text("{}")
    before = snapshot(tmp_path)
    result = run_script("train.py", "-m", *SWEEP, *FAST, f"hydra.sweep.dir={target}", cwd=tmp_path)
    refused(result, "hydra.sweep.dir=", "choose a new hydra.sweep.dir")
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    ("subdir", "phrase"),
    [
        ("same", "is the same for every job"),
        ("/elsewhere/${hydra.job.num}", "leads out of the sweep directory"),
        ("../${hydra.job.num}", "leads out of the sweep directory"),
    ],
)
def test_job_folders_that_jobs_would_share_or_that_leave_the_sweep_are_refused(tmp_path, subdir, phrase):
    result = run_script("train.py", "-m", *SWEEP, *FAST, f"hydra.sweep.subdir={subdir}", cwd=tmp_path)
    refused(result, phrase, "hydra.sweep.subdir=job_${hydra.job.num}")
    assert not list(tmp_path.iterdir())


def test_a_job_stopped_by_the_submitit_time_limit_says_so():
    from omegaconf import OmegaConf
    from submitit.core.utils import UncompletedJobError

    from {{ cookiecutter.package }}.run.launchers import stopped_by_time_limit

    hydra = OmegaConf.create({"hydra": {"launcher": {"timeout_min": 1}}})
    error = UncompletedJobError("Job not requeued because: timed-out too many times.")
    problem = stopped_by_time_limit(error, hydra)
    assert "stopped by the time limit (hydra.launcher.timeout_min=1)" in str(problem)
    assert "resume=auto" in str(problem)
    assert stopped_by_time_limit(UncompletedJobError("Job failed"), hydra) is None


def test_resume_auto_keeps_the_finished_jobs_and_runs_the_rest(finished_sweep, tmp_path):
    sweep = shutil.copytree(finished_sweep, tmp_path / "sweep")
    shutil.rmtree(sweep / "1")  # as if killed after job 0
    for name in ("summary.csv", "summary.md"):
        (sweep / name).unlink()
    job_0 = snapshot(sweep / "0")
    result = run_script(
        "train.py", "-m", *SWEEP, *FAST, "resume=auto", f"hydra.sweep.dir={sweep}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resume=auto: continuing the sweep in {sweep} (1 jobs finished)" in result.stdout
    after = snapshot(sweep / "0")
    # Job 0 did not run again: its results, checkpoints and log are untouched. Hydra writes every job's
    # .hydra/ before any callback can act: config.yaml and overrides.yaml come out the same, hydra.yaml
    # records Hydra's settings of this continuation.
    assert {name: after[name] for name in after if not name.startswith(".hydra/")} == {
        name: job_0[name] for name in job_0 if not name.startswith(".hydra/")
    }
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml"):
        assert after[name][1] == job_0[name][1]
    original = (finished_sweep / "1" / ".hydra" / "overrides.yaml").read_text()
    assert (sweep / "1" / ".hydra" / "overrides.yaml").read_text() == original  # no resume=auto in it
    with open(sweep / "summary.csv") as file:
        rows = list(csv.DictReader(file))
    assert [(row["job"], row["status"]) for row in rows] == [("0", "ok"), ("1", "ok")]
    assert "resume" not in rows[0]  # not a swept key


def test_resume_auto_without_an_unfinished_sweep_starts_a_new_one(finished_sweep, tmp_path):
    # The only sweep of this command there has finished: nothing to continue.
    shutil.copytree(finished_sweep, tmp_path / "logs" / "train" / "multiruns" / "finished")
    result = run_script("train.py", "-m", *SWEEP, *FAST, "resume=auto", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resume=auto: no unfinished sweep of this command; starting a new sweep" in result.stdout
    assert len(list((tmp_path / "logs" / "train" / "multiruns").iterdir())) == 2


@pytest.mark.parametrize(
    ("sweep", "phrase"),
    [
        (
            "optimizer=adamw,nonexistent",
            "optimizer=nonexistent cannot be composed: In 'train': Could not find",
        ),
        ("nogroup=a,b", "nogroup=a cannot be composed: Could not override 'nogroup'"),
        (
            "optimizer.lr=range(1,1)",
            "optimizer.lr=range(1,1) gives no value, so the sweep would have no jobs",
        ),
    ],
)
def test_a_sweep_value_that_cannot_work_is_refused_before_the_sweep_directory_exists(tmp_path, sweep, phrase):
    result = run_script("train.py", "-m", sweep, *FAST, cwd=tmp_path)
    refused(result, phrase)
    assert not list(tmp_path.iterdir())


def test_a_sweep_with_bad_jobs_says_why_in_one_line_without_a_traceback(tmp_path):
    fast = [arg for arg in FAST if not arg.startswith("model.backbone")]
    result = run_script("train.py", "-m", "model.backbone=resnet999,resnet998", *fast, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Unknown backbone 'resnet999'" in result.stderr
    assert "Failed: job 1: Unknown backbone 'resnet998'" in result.stdout  # the summary
    assert "No job of the 2 finished: no best job." in result.stdout


# Job 2 is killed once its first last.ckpt exists: a checkpoint every 3 steps, 3 epochs of 12.
KILLABLE = [
    *(arg for arg in FAST if "limit_train_batches" not in arg and "max_epochs" not in arg),
    "+trainer.limit_train_batches=12",
    "trainer.max_epochs=3",
    "model.drop_rate=0.3",
    "callbacks.periodic_checkpoint.train_time_interval=null",
    "+callbacks.periodic_checkpoint.every_n_train_steps=3",
]
FOUR_JOBS = ["optimizer.lr=1e-3,2e-3,3e-3,4e-3"]


def start_sweep(cwd: Path, *arguments: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "train.py"), "-m", *FOUR_JOBS, *KILLABLE, *arguments],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, killed as a whole
    )


def wait_for_first_checkpoint_of_job_2(sweeps: Path, process: subprocess.Popen, timeout: float = 600) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the sweep ended before job 2 could be killed"
        for last in sweeps.glob("*/2/checkpoints/last.ckpt"):
            return last
        time.sleep(0.02)
    raise TimeoutError(f"job 2 wrote no last.ckpt in {sweeps}")


def rows(sweep: Path) -> list[dict[str, str]]:
    with open(sweep / "summary.csv") as file:
        return [
            {key: value for key, value in row.items() if key not in ("wall_time_s", "directory")}
            for row in csv.DictReader(file)
        ]


@pytest.mark.slow
def test_a_sweep_killed_during_job_2_continues_to_the_uninterrupted_results(tmp_path):
    uninterrupted = start_sweep(tmp_path, "hydra.sweep.dir=uninterrupted")
    assert uninterrupted.wait(timeout=900) == 0, uninterrupted.stderr.read()[-3000:]

    sweeps = tmp_path / "logs" / "train" / "multiruns"
    killed = start_sweep(tmp_path)
    last = wait_for_first_checkpoint_of_job_2(sweeps, killed)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    [sweep] = list(sweeps.iterdir())
    assert not (sweep / "2" / "results.json").exists() and not (sweep / "3").exists()
    assert torch.load(last, weights_only=True)["global_step"] < 36, "job 2 should be killed mid-run"
    assert not (sweep / "summary.csv").exists()
    finished = {job: snapshot(sweep / job) for job in ("0", "1")}

    resumed = start_sweep(tmp_path, "resume=auto")
    assert resumed.wait(timeout=900) == 0, resumed.stderr.read()[-3000:]
    assert [path.name for path in sweeps.iterdir()] == [sweep.name]  # continued, not a new sweep
    for job, files in finished.items():  # not run again
        after = snapshot(sweep / job)
        assert {name: after[name] for name in files if not name.startswith(".hydra/")} == {
            name: value for name, value in files.items() if not name.startswith(".hydra/")
        }
    assert f"Continuing this job from {last}" in (sweep / "2" / "train.log").read_text()
    for job in range(4):
        first = json.loads((tmp_path / "uninterrupted" / str(job) / "results.json").read_text())
        second = json.loads((sweep / str(job) / "results.json").read_text())
        assert second["metrics"].keys() == first["metrics"].keys()
        for name, value in first["metrics"].items():
            assert second["metrics"][name] == pytest.approx(value, abs=1e-6), (job, name)
        assert second["optimized"]["value"] == pytest.approx(first["optimized"]["value"], abs=1e-6)
        assert second["epochs"] == first["epochs"]
    first_rows, second_rows = rows(tmp_path / "uninterrupted"), rows(sweep)
    assert [row["status"] for row in second_rows] == ["ok"] * 4
    numeric = ("optimized_value", "test/acc", "val/acc", "val/loss")
    for first_row, second_row in zip(first_rows, second_rows, strict=True):
        assert {k: v for k, v in second_row.items() if k not in numeric} == {
            k: v for k, v in first_row.items() if k not in numeric
        }
        for key in numeric:
            assert float(second_row[key]) == pytest.approx(float(first_row[key]), abs=1e-6)
