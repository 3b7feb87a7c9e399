"""The edges of a Hydra run: what happens before Hydra writes into the run directory, and after the
job has ended. Configured in configs/hydra/default.yaml; imports nothing heavy (no torch)."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from ..errors import ConfigurationError, user_error
from .added_keys import check_added_keys
from .checks import check_fresh_start, check_single_run
from .cluster import (
    agree_on_run_dir,
    is_requeued,
    is_torchrun,
    resume_requeued_job,
    slurm_run_dir,
    slurm_tasks,
)
from .command import exit_with_message
from .directory import (
    CHECKPOINT_DIR,
    FAILURE_FILE,
    RESULTS_FILE,
    check_run_dir_is_free,
    has_checkpoints,
    start_checkpoint,
    write_json_atomically,
)
from .distributed import entry_point, remember_entry_point
from .launchers import check_launcher, stopped_by_time_limit
from .lock import RunDirectoryLock
from .resume_search import check_unfinished_run, find_run_to_resume
from .settings import check_given_settings

log = logging.getLogger(__name__)


def is_worker_process() -> bool:
    """True in the processes a distributed launch adds (Lightning's, torchrun's, SLURM's tasks);
    the run directory belongs to the first one."""
    names = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")
    return any(int(os.environ.get(name, "0") or 0) > 0 for name in names)


class RunGuard(Callback):
    """Keeps failed and refused runs from leaving debris or damaging other runs.

    - Before a single run: with `resume=auto`, continue the newest unfinished run of the same config
      in its own directory; refuse a directory that cannot be written, that another process is using
      (a lock held until the run ends), or that holds anything but the run this one continues, before
      Hydra writes anything into it.
    - After a single run that failed or was stopped (Ctrl-C, also before the task started): remove
      its directory if this run created it and it holds no checkpoint (nothing to resume), and show a
      user error as one line with exit status 1.
    - After a failed sweep job: leave failure.json in its directory, so a summary can say why.
      The error still fails the job the way Hydra expects, so the sweep goes on with the others.
    """

    def __init__(self) -> None:
        self.created_run_dir = False
        self.run_dir: Path | None = None
        self.lock: RunDirectoryLock | None = None
        # Made in the process the user started; a sweep's workers get this object pickled.
        self.started_as = entry_point()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Refuse a sweep that every process of a distributed launch would run, or whose launcher or
        added keys cannot work, before any job starts (sweep.guard checks the sweep directory)."""
        if is_torchrun() or slurm_tasks() > 1:
            exit_with_message(
                ConfigurationError(
                    "A multirun (-m) started by torchrun or srun would run the whole sweep in every "
                    "process. Start the sweep once (python train.py -m ...) and let each job start its "
                    "own processes: trainer=ddp on one machine, or hydra/launcher=slurm for SLURM jobs."
                )
            )
        try:
            check_launcher(config)
            check_added_keys(config)
        except ConfigurationError as error:
            exit_with_message(error)

    def on_job_start(self, config: DictConfig, *, task_function: Any = None, **kwargs: Any) -> None:
        if task_function is not None:
            remember_entry_point(task_function, self.started_as)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if str(config.hydra.run.dir).startswith("~"):  # paths.log_dir='~/logs': a home, not a folder "~"
            with read_write(config), open_dict(config):
                config.hydra.run.dir = os.path.expanduser(config.hydra.run.dir)
        slurm_run_dir(config)
        if is_worker_process():
            agree_on_run_dir(config)
            self.follow_the_first_process(config)
            return
        try:
            check_added_keys(config)
            check_given_settings(config, config.hydra)
            check_single_run(config)
            check_fresh_start(config, str(config.hydra.job.name))
            if config.get("resume") not in (None, "auto"):
                raise ConfigurationError(
                    f"resume={config.resume!r}: use resume=auto, or ckpt_path=<checkpoint>."
                )
            if config.get("resume") == "auto" and start_checkpoint(config) is not None:
                raise ConfigurationError(
                    f"resume=auto and ckpt_path={config.ckpt_path} both say where to start: use "
                    "resume=auto to continue an unfinished run, or ckpt_path to start from a checkpoint."
                )
            if config.get("resume") == "auto":
                self.choose_run_to_resume(config)
            run_dir = Path(config.hydra.run.dir)
            resume_requeued_job(config, run_dir)
            existed = run_dir.exists()
            self.check_writable(run_dir)
            self.lock = RunDirectoryLock(run_dir)
            self.lock.acquire()
            self.run_dir, self.created_run_dir = run_dir, not existed
            atexit.register(self.remove_if_unfinished)  # a run stopped before on_run_end
            # The other tasks of a SLURM job know the directory from their start: Hydra writes there too.
            others = (".hydra", f"{config.hydra.job.name}.log") if slurm_tasks() > 1 else ()
            check_run_dir_is_free(
                run_dir, start_checkpoint(config), requeued=is_requeued(), written_by_other_tasks=others
            )
            agree_on_run_dir(config)
        except ConfigurationError as error:
            self.remove_if_unfinished()
            exit_with_message(error)

    def remove_if_unfinished(self) -> None:
        """Remove the run directory if this run created it and left nothing to keep (no results, no
        checkpoint to resume from); release the directory's lock."""
        run_dir = self.run_dir
        if run_dir is None:
            return
        self.run_dir = None  # once: on_run_end, a refusal or the exit, whichever comes first
        if self.created_run_dir and not has_checkpoints(run_dir) and not (run_dir / RESULTS_FILE).exists():
            logging.shutdown()  # closes the run's log file before its directory goes
            shutil.rmtree(run_dir, ignore_errors=True)
        if self.lock is not None:
            self.lock.release()

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
        """Continue the run in hydra.run.dir when it was given, else the newest unfinished run of the
        same config among the runs beside it."""
        if any(override.startswith("hydra.run.dir=") for override in config.hydra.overrides.hydra):
            run_dir = Path(config.hydra.run.dir)
            if not check_unfinished_run(run_dir, config):
                print(f"resume=auto: no unfinished run in {run_dir}; starting a new run.")
                return
        else:
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
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigurationError(f"hydra.run.dir={run_dir} is a file; name a new or empty directory.")
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
            if self.lock is not None:
                self.lock.release()
            self.run_dir = None
            return
        self.remove_if_unfinished()
        problem = user_error(job_return._return_value)
        if problem is not None:
            exit_with_message(problem)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status != JobStatus.FAILED or job_return.hydra_cfg.hydra.mode.name != "MULTIRUN":
            return
        error = job_return._return_value
        problem = user_error(error) or stopped_by_time_limit(error, job_return.hydra_cfg)
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
        if problem is not None:
            # Said in one line above; Hydra raises a failed job's error when the sweep ends, and
            # SystemExit ends it there with status 1 and no traceback (a bug keeps its traceback).
            job_return._return_value = SystemExit(str(problem))
