"""A sweep's launcher settings (hydra/launcher=joblib, submitit_local, submitit_slurm, slurm), judged before
the first job starts and before the sweep directory exists: the launchers would otherwise fail halfway,
with a traceback and an empty sweep directory behind them."""

from __future__ import annotations

import shutil
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationKeyError, OmegaConfBaseException

from ..errors import ConfigurationError
from .settings import Number

# Each launcher's numbers, by the class its _target_ names; a key the launcher's config lacks is skipped.
SUBMITIT = {
    "timeout_min": Number("60", whole=True, minimum=1),
    "nodes": Number("1", whole=True, minimum=1),
    "tasks_per_node": Number("1", whole=True, minimum=1),
    "cpus_per_task": Number("8", whole=True, minimum=1, nullable=True),
    "gpus_per_node": Number("1", whole=True, minimum=0, nullable=True),
    "mem_gb": Number("32", whole=True, minimum=1, nullable=True),
    "max_num_timeout": Number("3", whole=True, minimum=0),
    "array_parallelism": Number("256", whole=True, minimum=1),
}
JOBLIB = {"timeout": Number("3600", minimum=1, nullable=True)}
NUMBERS = {"LocalLauncher": SUBMITIT, "SlurmLauncher": SUBMITIT, "JoblibLauncher": JOBLIB}
LOCAL_LAUNCHERS = (
    "hydra/launcher=submitit_local or hydra/launcher=joblib (or no hydra/launcher: one job after another)"
)


def check_launcher(config: DictConfig) -> None:
    """Refuse launcher settings that cannot work on this machine, naming the key, the value and the fix."""
    if OmegaConf.select(config, "hydra.launcher") is None:
        return
    choice = OmegaConf.select(config, "hydra.runtime.choices", default={}).get("hydra/launcher", "basic")
    launcher = resolved_launcher(config, choice)
    kind = str(launcher.get("_target_", "")).rsplit(".", 1)[-1]
    tasks = launcher.get("tasks_per_node")
    if kind == "SlurmLauncher" and isinstance(tasks, int) and tasks < 1:  # trainer=ddp's devices=-1
        raise ConfigurationError(
            f"hydra.launcher.tasks_per_node={tasks} (from trainer.devices): a SLURM job needs a "
            "number of tasks; set trainer.devices=<GPUs per node>, e.g. trainer.devices=4."
        )
    for key, rule in NUMBERS.get(kind, {}).items():
        if key in launcher and (problem := rule.problem(launcher[key])):
            raise ConfigurationError(
                f"hydra.launcher.{key}={launcher[key]!r} {problem} (hydra/launcher={choice}); "
                f"set e.g. hydra.launcher.{key}={rule.example}."
            )
    missing = [command for command in ("sbatch", "srun") if shutil.which(command) is None]
    if kind == "SlurmLauncher" and missing:
        raise ConfigurationError(
            f"SLURM is not available here (no {' or '.join(missing)} on PATH), so hydra/launcher="
            f"{choice} cannot submit the jobs. Run the sweep from a SLURM login node, or on this "
            f"machine with {LOCAL_LAUNCHERS}."
        )
    if kind == "JoblibLauncher":
        jobs = launcher.get("n_jobs")
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs == 0:
            raise ConfigurationError(
                f"hydra.launcher.n_jobs={jobs!r} (hydra/launcher=joblib) must be the number of jobs at "
                "a time (-1: one per CPU core); set e.g. hydra.launcher.n_jobs=2."
            )


def resolved_launcher(config: DictConfig, choice: str) -> dict[str, Any]:
    """hydra.launcher with its interpolations resolved; one that cannot be resolved says what it needs."""
    try:
        return OmegaConf.to_container(config.hydra.launcher, resolve=True)
    except InterpolationKeyError as error:
        key = str(error).split("'")[1] if "'" in str(error) else str(error)
        fix = (
            "add trainer=ddp (e.g. trainer=ddp trainer.devices=4), whose settings it takes"
            if key.startswith("trainer.")
            else f"set {key}"
        )
        raise ConfigurationError(
            f"hydra/launcher={choice} needs {key}, which this config does not set: {fix}."
        ) from None
    except OmegaConfBaseException as error:
        raise ConfigurationError(f"hydra/launcher={choice}: {error}".splitlines()[0]) from None


def stopped_by_time_limit(error: BaseException | None, hydra_config: DictConfig) -> ConfigurationError | None:
    """submitit's error for a job that ran out of hydra.launcher.timeout_min more often than it may be
    requeued, as a user error that says so; None for any other error."""
    if type(error).__name__ != "UncompletedJobError" or "timed-out" not in str(error):
        return None
    timeout = OmegaConf.select(hydra_config, "hydra.launcher.timeout_min")
    return ConfigurationError(
        f"The job started but was stopped by the time limit (hydra.launcher.timeout_min={timeout}) each "
        "time submitit requeued it. Raise hydra.launcher.timeout_min, then continue the sweep with the "
        "same command plus resume=auto."
    )
