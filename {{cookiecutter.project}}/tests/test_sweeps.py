"""Sweeps that scale: DDP inside a multirun, parallel and cluster launchers, torchrun and SLURM.

Each job of a sweep must train on its own values in every process it has; each process says so in
one line of the job's train.log ("Process rank R of W ..."), which these tests read back.
"""

from __future__ import annotations

import csv
import inspect
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from conftest import FAST, PROJECT_ROOT, run_script

ANNOUNCEMENT = re.compile(
    r"^\[(?P<time>[\d\- :,]+)\].*Process rank (?P<rank>\d+) of (?P<world>\d+) .*"
    r"optimizer\.opt=(?P<opt>\S+) optimizer\.lr=(?P<lr>\S+)",
    re.MULTILINE,
)
ONE_EPOCH = [*FAST, "trainer.max_epochs=1"]


def announcements(run_dir: Path) -> list[dict[str, str]]:
    """What each process of the run in `run_dir` said it trains with, from its train.log."""
    return [match.groupdict() for match in ANNOUNCEMENT.finditer((run_dir / "train.log").read_text())]


def sweep_dir(tmp_path: Path) -> Path:
    [sweep] = list((tmp_path / "logs" / "train" / "multiruns").iterdir())  # one sweep, not one per process
    return sweep


def job_dirs(sweep: Path) -> list[Path]:
    return sorted((path for path in sweep.iterdir() if path.name.isdigit()), key=lambda path: int(path.name))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_train(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_lightning_still_starts_ddp_processes_through_the_function_we_replace():
    # run/distributed.py replaces this private function of Lightning; if Lightning renames it or
    # stops calling it, DDP inside a sweep would silently run the whole sweep in every process again.
    from lightning.pytorch.strategies.launchers import subprocess_script

    assert inspect.signature(subprocess_script._hydra_subprocess_cmd).parameters.keys() == {"local_rank"}
    source = inspect.getsource(subprocess_script._SubprocessScriptLauncher)
    assert "_hydra_subprocess_cmd(local_rank)" in source
    # The child observer watches launcher.procs itself: emptying it at the end of a job stops it.
    assert "_launch_process_observer(self.procs)" in source


@pytest.mark.slow
def test_ddp_inside_a_sweep_trains_each_job_on_its_own_values_in_every_process(tmp_path):
    result = run_script("train.py", "-m", "trainer=ddp_sim", "optimizer=adamw,sgd", *ONE_EPOCH, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "logs" / "train" / "runs").exists()  # no process ran a run of its own
    jobs = job_dirs(sweep_dir(tmp_path))
    assert [job.name for job in jobs] == ["0", "1"]
    expected = {"0": ("adamw", "0.002"), "1": ("sgd", "0.05")}
    for job in jobs:
        said = announcements(job)
        assert sorted(int(line["rank"]) for line in said) == [0, 1]
        assert {(line["opt"], line["lr"], line["world"]) for line in said} == {(*expected[job.name], "2")}
        results = json.loads((job / "results.json").read_text())
        assert results["world_size"] == 2
        with open(job / "csv" / "metrics.csv") as file:
            rows = list(csv.DictReader(file))
        assert sum(1 for row in rows if row["val/acc"]) == 1  # logged once, not once per process
        assert sum(1 for row in rows if row["test/acc"]) == 1


@pytest.mark.slow
def test_joblib_runs_the_jobs_of_a_sweep_at_the_same_time(tmp_path):
    result = run_script(
        "train.py",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "optimizer=adamw,sgd",
        *ONE_EPOCH,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = job_dirs(sweep_dir(tmp_path))
    spans = []
    for job in jobs:
        assert (job / "results.json").is_file()
        lines = (job / "train.log").read_text().splitlines()
        stamps = [datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f") for line in lines if line[:1] == "["]
        spans.append((min(stamps), max(stamps)))
    (start_a, end_a), (start_b, end_b) = spans
    assert start_a < end_b and start_b < end_a  # the two jobs overlapped in time
    assert {announcements(job)[0]["opt"] for job in jobs} == {"adamw", "sgd"}


@pytest.mark.slow
def test_submitit_local_runs_ddp_jobs_on_their_own_values(tmp_path):
    result = run_script(
        "train.py",
        "-m",
        "hydra/launcher=submitit_local",
        "trainer=ddp_sim",
        "optimizer.lr=1e-3,3e-3",
        *ONE_EPOCH,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = sweep_dir(tmp_path)
    assert (sweep / ".submitit").is_dir()  # the jobs went through submitit
    for job, lr in zip(job_dirs(sweep), ("0.001", "0.003"), strict=True):
        said = announcements(job)
        assert sorted((line["rank"], line["lr"]) for line in said) == [("0", lr), ("1", lr)]
        assert json.loads((job / "results.json").read_text())["world_size"] == 2


def slurm_task(rank: int, port: int) -> dict[str, str]:
    """The environment srun gives task `rank` of a 2-task job step on one node."""
    return {
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "train",
        "SLURM_NTASKS": "2",
        "SLURM_NTASKS_PER_NODE": "2",
        "SLURM_NNODES": "1",
        "SLURM_NODELIST": "localhost",
        "SLURM_PROCID": str(rank),
        "SLURM_LOCALID": str(rank),
        "SLURM_NODEID": "0",
        "MASTER_PORT": str(port),
    }


@pytest.mark.slow
def test_two_slurm_tasks_train_one_run_in_one_directory(tmp_path):
    port = free_port()
    args = [str(PROJECT_ROOT / "train.py"), "trainer=ddp_sim", "optimizer=sgd", *ONE_EPOCH]
    tasks = [start_train(args, tmp_path, slurm_task(rank, port)) for rank in (0, 1)]
    outputs = [tasks[0].communicate(timeout=600)[0]]
    if tasks[0].returncode != 0:
        tasks[1].kill()  # it would wait for the first task forever
    outputs.append(tasks[1].communicate(timeout=600)[0])
    assert [task.returncode for task in tasks] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "SLURM auto-requeueing enabled" in outputs[0]  # Lightning chose its SLURM environment
    [run_dir] = list((tmp_path / "logs" / "train" / "runs").iterdir())
    assert run_dir.name == "slurm-4242"
    said = announcements(run_dir)
    assert sorted((line["rank"], line["world"], line["opt"]) for line in said) == [
        ("0", "2", "sgd"),
        ("1", "2", "sgd"),
    ]
    assert json.loads((run_dir / "results.json").read_text())["world_size"] == 2


@pytest.mark.slow
def test_torchrun_on_two_nodes_trains_one_run_in_one_directory(tmp_path):
    port = free_port()
    tasks = [
        start_train(
            [
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                "--nproc-per-node=1",
                f"--node-rank={node}",
                "--master-addr=127.0.0.1",
                f"--master-port={port}",
                str(PROJECT_ROOT / "train.py"),
                "trainer=ddp",
                "trainer.accelerator=cpu",
                "trainer.devices=1",
                "trainer.num_nodes=2",
                *ONE_EPOCH,
            ],
            tmp_path,
            {},
        )
        for node in (0, 1)
    ]
    outputs = [task.communicate(timeout=600)[0] for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    [run_dir] = list((tmp_path / "logs" / "train" / "runs").iterdir())
    said = announcements(run_dir)
    assert sorted((line["rank"], line["world"]) for line in said) == [("0", "2"), ("1", "2")]
    [results] = list(run_dir.glob("results.json"))
    assert json.loads(results.read_text())["world_size"] == 2


def test_a_sweep_started_by_torchrun_is_refused_before_any_job(tmp_path):
    torchrun = {"TORCHELASTIC_RUN_ID": "none", "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
    result = run_script("train.py", "-m", "optimizer=adamw,sgd", *ONE_EPOCH, cwd=tmp_path, env=torchrun)
    assert result.returncode == 1
    assert "would run the whole sweep in every process" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "logs").rglob("train.log"))


def test_slurm_sweep_needs_a_number_of_tasks(tmp_path):
    result = run_script("train.py", "-m", "hydra/launcher=slurm", "trainer=ddp", cwd=tmp_path)
    assert result.returncode == 1
    assert "set trainer.devices=<GPUs per node>" in result.stderr


@pytest.mark.parametrize(
    ("launcher", "phrase"),
    [
        (["hydra/launcher=slurm"], "hydra/launcher=slurm needs trainer.num_nodes"),
        (["hydra/launcher=submitit_slurm"], "SLURM is not available here"),
        (["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=2"], "hydra/launcher=submitit_local or"),
        (
            ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=-1"],
            "timeout_min=-1 must be at least 1",
        ),
        (["hydra/launcher=submitit_local", "hydra.launcher.nodes=0"], "nodes=0 must be at least 1"),
        (["hydra/launcher=joblib", "hydra.launcher.n_jobs=0"], "hydra.launcher.n_jobs=0"),
    ],
    ids=[
        "slurm-without-ddp",
        "submitit-slurm-here",
        "slurm-here",
        "timeout-negative",
        "no-nodes",
        "joblib-0",
    ],
)
def test_launcher_settings_that_cannot_work_are_refused_before_the_sweep_directory_exists(
    tmp_path, launcher, phrase
):
    needs_no_slurm = "SLURM is not" in phrase or "submitit_local or" in phrase
    if needs_no_slurm and shutil.which("srun") and shutil.which("sbatch"):
        pytest.skip("this machine has SLURM")
    result = run_script("train.py", "-m", *launcher, "optimizer=adamw,sgd", *ONE_EPOCH, cwd=tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and phrase in line
    assert not (tmp_path / "logs").exists()
