"""Runs on several processes started by Lightning: how the other processes of a run start, what a job
leaves behind for the next job of a sweep, and every process saying who it is (cluster.py: processes
started by SLURM or torchrun).

Lightning starts the other processes of a DDP run (`trainer=ddp`, `ddp_sim`) by running the
command line again. Inside a multirun that command is the whole sweep, so each process would run
every job, on its own job's values. `start_child_processes_with_this_job` makes Lightning start
them with this job's own overrides and directory instead, from whatever process runs the job
(train.py itself, a joblib worker, a submitit job). This replaces a private function of Lightning
(tested with the Lightning range in pyproject.toml; tests/test_sweeps.py fails loudly if it moves).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

# What Lightning's launcher sets in the environment of the process that runs a job (and its
# children inherit); a later job in the same process must start without them.
LAUNCH_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE", "OMP_NUM_THREADS")
# Hydra overrides that belong to the sweep rather than to the job: a child process runs one job.
SWEEP_ONLY_OVERRIDES = (
    "hydra.mode",
    "hydra.run.dir",
    "hydra.output_subdir",
    "hydra.sweep",
    "hydra/sweeper",
    "hydra.sweeper",
    "hydra/launcher",
    "hydra.launcher",
    "hydra.job.num",
    "hydra.job.id",
)
# Seconds a finished job waits for its other processes to exit before ending them.
CHILD_EXIT_TIMEOUT_S = 60
# The key values every process names when it starts (beside the job's own overrides).
ANNOUNCED_KEYS = (
    "model.backbone",
    "optimizer.opt",
    "optimizer.lr",
    "optimizer.weight_decay",
    "model.drop_path_rate",
    "data.batch_size",
    "seed",
)

# How this process was started (`[script]` or `["-m", module]`), as child processes start.
_entry_point: list[str] | None = None


def entry_point() -> list[str]:
    """`[absolute path of the script]` or `["-m", module]`: how the command line started Python."""
    import __main__

    spec = getattr(__main__, "__spec__", None)
    if spec is not None:
        return ["-m", spec.name]
    return [os.path.abspath(sys.argv[0])]


def remember_entry_point(task_function: Callable[..., Any], started_as: list[str]) -> None:
    """Record the script that runs this job, for its child processes: the task function's file,
    or else how the sweep's own process was started (`started_as`, recorded there).

    Inside joblib and submitit workers `__main__` and sys.argv belong to the worker, and the task
    function arrives pickled by value, without its file.
    """
    global _entry_point
    code = getattr(task_function, "__code__", None)
    script = code.co_filename if code is not None else ""
    _entry_point = [os.path.abspath(script)] if Path(script).is_file() else started_as


def main_config_dir() -> str | None:
    """The directory (or pkg:// path) of the primary config, as Hydra found it."""
    from hydra.core.hydra_config import HydraConfig

    for source in HydraConfig.get().runtime.config_sources:
        if source.provider == "main":
            return source.path.removeprefix("file://")
    return None


def child_command(local_rank: int) -> tuple[list[str], str]:
    """The command and working directory of the process with this local rank: the same script,
    config and overrides as this job, writing into this job's directory (no second .hydra/)."""
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    command = [sys.executable, *(_entry_point or entry_point())]
    config_dir = main_config_dir()
    if config_dir is not None:
        command.append(f"--config-path={config_dir}")
    command.append(f"--config-name={hydra.job.config_name}")
    for source in hydra.runtime.config_sources:
        if source.provider == "command-line":  # --config-dir
            command.append(f"--config-dir={source.path.removeprefix('file://')}")
    command += list(hydra.overrides.task)
    command += [o for o in hydra.overrides.hydra if not o.startswith(SWEEP_ONLY_OVERRIDES)]
    output_dir = hydra.runtime.output_dir.replace("\\", "\\\\").replace('"', '\\"')
    command += [f'hydra.run.dir="{output_dir}"', "hydra.output_subdir=null"]
    return command, hydra.runtime.cwd


def start_child_processes_with_this_job() -> None:
    """Make Lightning's DDP launcher start the other processes with `child_command`."""
    from lightning.pytorch.strategies.launchers import subprocess_script

    if not hasattr(subprocess_script, "_hydra_subprocess_cmd"):
        raise RuntimeError(
            "This Lightning release no longer has lightning.pytorch.strategies.launchers."
            "subprocess_script._hydra_subprocess_cmd, which DDP runs rely on; install the Lightning "
            "range in pyproject.toml."
        )
    subprocess_script._hydra_subprocess_cmd = child_command


@dataclass
class ProcessState:
    """What a DDP job changes in the process that runs it: launch variables and torch's threads."""

    environment: dict[str, str | None] = field(default_factory=dict)
    threads: int = 0

    @classmethod
    def now(cls) -> ProcessState:
        import torch

        return cls({name: os.environ.get(name) for name in LAUNCH_VARIABLES}, torch.get_num_threads())

    def restore(self) -> None:
        import torch

        for name, value in self.environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        torch.set_num_threads(self.threads)


def end_child_processes(children: Sequence[subprocess.Popen], failed: bool) -> None:
    """Wait for the job's other processes to exit (at once end them if the job failed: they
    would wait for this one in a collective operation)."""
    for child in children:
        try:
            child.wait(timeout=0 if failed else CHILD_EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("Ending process %d of this job, which did not exit.", child.pid)
            child.kill()
            child.wait()
    codes = [child.returncode for child in children]
    if not failed and any(codes):
        log.warning("Other processes of this job exited with %s.", codes)


def end_distributed_job(trainer: Any, before: ProcessState, failed: bool) -> None:
    """Leave the process as the job found it, so that the next job of a sweep starts afresh:
    its other processes ended, the process group left, the launch variables and threads restored.
    """
    import torch.distributed

    launcher = getattr(getattr(trainer, "strategy", None), "launcher", None)
    children = list(getattr(launcher, "procs", None) or [])
    if children:
        # Lightning's child observer watches this very list and kills this process when a child
        # exits with an error; emptied, it stops, so a child's exit no longer ends the next job.
        launcher.procs.clear()
        end_child_processes(children, failed)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    before.restore()


def announce_process(trainer: Any, config: DictConfig) -> None:
    """Log one line naming this process (rank, world size) and the values it trains with."""
    from hydra.core.hydra_config import HydraConfig

    values = [
        f"{key}={OmegaConf.select(config, key)}"
        for key in ANNOUNCED_KEYS
        if OmegaConf.select(config, key, default="<absent>") != "<absent>"
    ]
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    log.info(
        "Process rank %d of %d (node %d, local rank %d), pid %d: %s; overrides: %s",
        trainer.global_rank,
        trainer.world_size,
        trainer.node_rank,
        trainer.local_rank,
        os.getpid(),
        " ".join(values),
        " ".join(overrides) or "none",
    )
