"""The edges of a Hydra run: what happens before Hydra writes into the run directory, and after the
job has ended. Configured in configs/hydra/default.yaml; imports nothing heavy (no torch)."""

from __future__ import annotations

import atexit
import difflib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from ..errors import ConfigurationError, user_error
from .command import exit_with_message
from .directory import (
    CHECKPOINT_DIR,
    FAILURE_FILE,
    RESULTS_FILE,
    check_output_dir_is_new,
    has_checkpoints,
    start_checkpoint,
    write_json_atomically,
)
from .distributed import (
    agree_on_run_dir,
    entry_point,
    is_torchrun,
    remember_entry_point,
    resume_requeued_job,
    slurm_run_dir,
    slurm_tasks,
)

log = logging.getLogger(__name__)
# Keys that say how to start a run rather than what it trains: a run resumed with them is the same run.
START_KEYS = ("resume", "ckpt_path")


def is_worker_process() -> bool:
    """True in the processes a distributed launch adds (Lightning's, torchrun's, SLURM's tasks);
    the run directory belongs to the first one."""
    names = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")
    return any(int(os.environ.get(name, "0") or 0) > 0 for name in names)


def what_it_trains(config: DictConfig) -> dict[str, Any]:
    """The config without Hydra's node and the start keys, unresolved (as Hydra saves it)."""
    content = OmegaConf.to_container(config, resolve=False)
    return {key: value for key, value in content.items() if key not in ("hydra", *START_KEYS)}


def find_run_to_resume(runs_dir: Path, config: DictConfig) -> Path | None:
    """The newest run under `runs_dir` with the same config that has a last.ckpt and no results."""
    wanted = what_it_trains(config)
    candidates = sorted(
        runs_dir.glob(f"*/{CHECKPOINT_DIR}/last.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for last in candidates:
        run_dir = last.parent.parent
        saved = run_dir / ".hydra" / "config.yaml"
        if (run_dir / RESULTS_FILE).exists() or not saved.is_file():
            continue
        if what_it_trains(OmegaConf.load(saved)) == wanted:
            return run_dir
    return None


def top_level_keys(config: DictConfig) -> set[str]:
    """The settings the task's primary config has (configs/<task>.yaml): its keys and its groups."""
    sources = [s for s in config.hydra.runtime.config_sources if s.provider == "main" and s.schema == "file"]
    if not sources:
        return set()
    directory = Path(str(sources[0].path).removeprefix("file://"))
    primary = OmegaConf.load(directory / f"{config.hydra.job.config_name}.yaml")
    keys = {str(key) for key in primary if key != "defaults"} | {"hydra"}
    for entry in primary.get("defaults", []):
        if isinstance(entry, DictConfig):
            for group in entry:
                keys.add(str(group).removeprefix("override ").split("/")[0])
    return keys


def check_added_keys(config: DictConfig) -> None:
    """Refuse `+key=value` (or `++key=value`) for a key the task has no setting for: Hydra would add
    it as a new, unused setting, and the run would silently go on without what the user meant."""
    try:
        known = top_level_keys(config)
        # As typed: a value may interpolate what exists only once the job runs (${paths.output_dir}).
        typed = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
        overrides = OverridesParser.create().parse_overrides(typed)
    except Exception as error:  # Hydra swallows a callback's error and skips the guards after it
        log.warning("Could not check the command line's added keys (%s); going on.", error)
        return
    if not known:
        return
    for override in overrides:
        name = override.key_or_group.split(".")[0].split("/")[0]
        if (override.is_add() or override.is_force_add()) and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "."
            raise ConfigurationError(
                f"{override.input_line}: {config.hydra.job.config_name}.yaml has no setting {name!r}, so it "
                f"would be added and never used{hint} (--help lists the config groups, --cfg job every key.)"
            )


class RunGuard(Callback):
    """Keeps failed and refused runs from leaving debris or damaging other runs.

    - Before a single run: with `resume=auto`, continue the newest unfinished run of the same config
      in its own directory; refuse a directory holding another run before Hydra writes anything
      into it; refuse a directory that cannot be written.
    - After a single run that failed: remove its directory if this run created it and it holds no
      checkpoint (nothing to resume), and show a user error as one line with exit status 1.
    - After a failed sweep job: leave failure.json in its directory, so a summary can say why.
      The error still fails the job the way Hydra expects, so the sweep goes on with the others.
    """

    def __init__(self) -> None:
        self.created_run_dir = False
        # Made in the process the user started; a sweep's workers get this object pickled.
        self.started_as = entry_point()
        self.sweep_dir: Path | None = None  # set when a sweep starts; cleared once summarized

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Refuse a sweep that every process of a distributed launch would run, and make sure the
        sweep ends with its summary: Hydra skips on_multirun_end when a job failed, but the
        process still exits through atexit."""
        if is_torchrun() or slurm_tasks() > 1:
            exit_with_message(
                ConfigurationError(
                    "A multirun (-m) started by torchrun or srun would run the whole sweep in every "
                    "process. Start the sweep once (python train.py -m ...) and let each job start its "
                    "own processes: trainer=ddp on one machine, or hydra/launcher=slurm for SLURM jobs."
                )
            )
        tasks = OmegaConf.select(config, "hydra.launcher.tasks_per_node", default=1)
        if isinstance(tasks, int) and tasks < 1:
            exit_with_message(
                ConfigurationError(
                    f"hydra.launcher.tasks_per_node={tasks} (from trainer.devices): a SLURM job needs a "
                    "number of tasks; set trainer.devices=<GPUs per node>, e.g. trainer.devices=4."
                )
            )
        try:
            check_added_keys(config)
        except ConfigurationError as error:
            exit_with_message(error)
        self.sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
        atexit.register(self.summarize)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.summarize()

    def summarize(self) -> None:
        """Write and print the sweep's summary once (summary.csv, summary.md, a plot)."""
        sweep_dir, self.sweep_dir = self.sweep_dir, None
        if sweep_dir is None or not sweep_dir.is_dir():
            return
        try:
            from ..sweep.summary import summarize_sweep

            summarize_sweep(sweep_dir)
        except Exception as error:  # the jobs' own results are safe; say how to try again
            log.error(
                "Could not summarize the sweep (%s: %s); rebuild it with: python -m %s.sweep %s",
                type(error).__name__,
                error,
                __package__.split(".")[0],
                sweep_dir,
            )

    def on_job_start(self, config: DictConfig, *, task_function: Any = None, **kwargs: Any) -> None:
        if task_function is not None:
            remember_entry_point(task_function, self.started_as)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        slurm_run_dir(config)
        if is_worker_process():
            agree_on_run_dir(config)
            self.follow_the_first_process(config)
            return
        try:
            check_added_keys(config)
            if config.get("resume") not in (None, "auto"):
                raise ConfigurationError(
                    f"resume={config.resume!r}: use resume=auto, or ckpt_path=<checkpoint>."
                )
            if config.get("resume") == "auto":
                self.choose_run_to_resume(config)
            run_dir = Path(config.hydra.run.dir)
            resume_requeued_job(config, run_dir)
            check_output_dir_is_new(run_dir, resume_from=start_checkpoint(config))
            self.created_run_dir = not run_dir.exists()
            self.check_writable(run_dir)
            agree_on_run_dir(config)
        except ConfigurationError as error:
            exit_with_message(error)

    @staticmethod
    def follow_the_first_process(config: DictConfig) -> None:
        """In a process a distributed launch added: hydra.run.dir is the directory the first process
        chose, so with resume=auto resume from the same last.ckpt (if that run had one)."""
        resume_requeued_job(config, Path(config.hydra.run.dir))
        last = Path(config.hydra.run.dir) / CHECKPOINT_DIR / "last.ckpt"
        if config.get("resume") == "auto" and start_checkpoint(config) is None and last.is_file():
            with read_write(config), open_dict(config):
                config.ckpt_path = str(last)

    @staticmethod
    def choose_run_to_resume(config: DictConfig) -> None:
        runs_dir = Path(config.hydra.run.dir).parent
        run_dir = find_run_to_resume(runs_dir, config)
        if run_dir is None:
            print(f"resume=auto: no unfinished run with this config in {runs_dir}; starting a new run.")
            return
        run_dir = run_dir.resolve()
        with read_write(config), open_dict(config):
            config.hydra.run.dir = str(run_dir)
            config.ckpt_path = str(run_dir / CHECKPOINT_DIR / "last.ckpt")
        print(f"resume=auto: continuing {run_dir} from {config.ckpt_path}")

    @staticmethod
    def check_writable(run_dir: Path) -> None:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            probe = run_dir / ".write-test"
            probe.touch()
            probe.unlink()
        except OSError as error:
            raise ConfigurationError(
                f"Cannot write the run directory {run_dir} ({error.strerror or error}). Point paths.log_dir "
                "(or hydra.run.dir) at a folder you can write to, e.g. paths.log_dir=$HOME/logs."
            ) from None

    def on_run_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status != JobStatus.FAILED:
            return
        run_dir = Path(job_return.hydra_cfg.hydra.runtime.output_dir)
        if self.created_run_dir and not has_checkpoints(run_dir) and not is_worker_process():
            logging.shutdown()  # closes the run's log file before its directory goes
            shutil.rmtree(run_dir, ignore_errors=True)
        problem = user_error(job_return._return_value)
        if problem is not None:
            exit_with_message(problem)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status != JobStatus.FAILED or job_return.hydra_cfg.hydra.mode.name != "MULTIRUN":
            return
        error = job_return._return_value
        problem = user_error(error)
        run_dir = Path(job_return.hydra_cfg.hydra.runtime.output_dir)
        write_json_atomically(
            run_dir / FAILURE_FILE,
            {
                "error": str(problem or error),
                "type": type(problem or error).__name__,
                "user_error": problem is not None,
            },
        )
        log.error("Job %s failed: %s", job_return.hydra_cfg.hydra.job.num, problem or error)
