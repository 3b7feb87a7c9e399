"""One run of a task, from its settings to results.json: what train and eval share."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from ..callbacks import RunFilesCallback
from ..errors import ConfigurationError, RunInterrupted
from ..hydra_compat import TARGET_ERRORS, instantiate, target_error
from .checkpoints import AtomicCheckpointIO
from .checks import check_settings
from .cluster import resume_requeued_job
from .command import send_lightning_logs_to_hydra
from .console import print_config, print_outputs, save_config
from .directory import CHECKPOINT_DIR, check_output_dir_is_new, start_checkpoint, write_results
from .distributed import (
    ProcessState,
    announce_process,
    end_distributed_job,
    start_child_processes_with_this_job,
)
from .garbage_collector import freeze_imported_objects
from .loggers import (
    finish_loggers,
    instantiate_loggers,
    log_final_metrics,
    log_run_config,
    logger_directories,
)
from .process import configure_process
from .sweep_job import resume_sweep_job

log = logging.getLogger(__name__)


def build_trainer(config: DictConfig, callbacks: list[Callback], loggers: list[Logger]) -> Trainer:
    """Instantiate the `trainer` group; settings Lightning rejects become a ConfigurationError.

    Checkpoints are written atomically (AtomicCheckpointIO).
    """
    if not loggers:  # nothing to send learning rates to
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer_config = config.trainer
    if trainer_config.get("sync_batchnorm") and trainer_config.get("accelerator") == "cpu":
        # PyTorch's SyncBatchNorm runs on GPUs only; trainer=ddp with trainer.accelerator=cpu still works.
        log.info("trainer.sync_batchnorm=true needs GPUs: this CPU run keeps per-process batch norm.")
        trainer_config = OmegaConf.merge(trainer_config, {"sync_batchnorm": False})
    try:
        return instantiate(
            trainer_config, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
        )
    except TARGET_ERRORS as error:
        # Lightning rejects bad values (precision, accelerator, devices, ...) when the Trainer is built.
        cause = target_error(error)
        raise ConfigurationError(f"Invalid trainer settings: {cause}") from cause


def instantiate_callbacks(config: DictConfig | None) -> dict[str, Callback]:
    """Instantiate every callback of the `callbacks` group by name (entries set to null are skipped)."""
    return {str(name): instantiate(entry) for name, entry in (config or {}).items() if entry is not None}


class AnnounceProcess(Callback):
    """Each process of a run logs one line when it starts: its rank, the world size, its values."""

    def __init__(self, config: DictConfig) -> None:
        self.config = config
        self.announced = False

    def setup(self, trainer: Trainer, pl_module: Any, stage: str) -> None:
        if not self.announced:
            announce_process(trainer, self.config)
            self.announced = True


class Run:
    """Start a run (check the settings, apply the process settings, refuse a used directory), build
    its loggers and trainer, and finish it (results.json, where everything went). A context manager:
    the loggers are closed however the run ends, so the next job of a sweep starts afresh.

        with Run(config) as run:
            trainer = run.build_trainer(callbacks)
            ...
            return run.finish(results, title, paths, metrics)
    """

    def __init__(self, config: DictConfig) -> None:
        self.started = time.perf_counter()
        self.config = config
        freeze_imported_objects()  # torch, Lightning, timm: imported by now, alive until exit
        send_lightning_logs_to_hydra()
        check_settings(config)
        configure_process(config)
        self.output_dir = Path(config.paths.output_dir)
        resume_requeued_job(config, self.output_dir)
        resume_sweep_job(config, self.output_dir)
        check_output_dir_is_new(self.output_dir, resume_from=start_checkpoint(config))
        self.loggers: list = []
        self.trainer: Trainer | None = None
        self.process_before = ProcessState.now()
        start_child_processes_with_this_job()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, error_type: type | None, *exception: object) -> None:
        finish_loggers(self.loggers)
        end_distributed_job(self.trainer, self.process_before, failed=error_type is not None)
        # Ctrl-C: Lightning ends fit/test with SystemExit after its own shutdown; elsewhere it is a
        # KeyboardInterrupt. Either becomes one line saying what was kept (the run guard then removes
        # a directory with nothing to continue from).
        interrupted = self.trainer is not None and self.trainer.interrupted and error_type is SystemExit
        if error_type is KeyboardInterrupt or interrupted:
            raise RunInterrupted(self.interruption_message()) from None

    def interruption_message(self) -> str:
        where = ""
        if self.trainer is not None:
            where = f" at epoch {self.trainer.current_epoch}, step {self.trainer.global_step}"
        last = self.output_dir / CHECKPOINT_DIR / "last.ckpt"
        if last.is_file():
            return (
                f"Stopped by Ctrl-C{where}; {last} holds the last saved state. Continue with the same "
                f"command plus resume=auto (or ckpt_path={last})."
            )
        return f"Stopped by Ctrl-C{where}, before the first checkpoint: nothing to continue from."

    @property
    def is_global_zero(self) -> bool:
        return self.trainer is None or self.trainer.is_global_zero

    def build_trainer(self, callbacks: list[Callback], with_loggers: bool = True) -> Trainer:
        """Instantiate the `logger` group (unless not `with_loggers`), then the trainer with these callbacks
        and those loggers."""
        self.loggers = instantiate_loggers(self.config.get("logger")) if with_loggers else []
        self.trainer = build_trainer(self.config, [*callbacks, AnnounceProcess(self.config)], self.loggers)
        if self.trainer.is_global_zero:
            log_run_config(self.trainer.loggers, self.config)
        return self.trainer

    def save_config(self, show: bool = False) -> None:
        """Write the resolved config as config.yaml in the run directory (and say so, naming its groups)."""
        if self.is_global_zero:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            saved = save_config(self.config, self.output_dir)
            if show:
                print_config(saved)

    def finish(
        self, results: Mapping[str, Any], title: str, paths: Mapping[str, Any], metrics: Mapping[str, float]
    ) -> dict[str, Any]:
        """Write results.json (on the main process), print where the run's files are; return the results.

        The logging callbacks add their files (plots/) to the printout and their results (per-class
        metrics) to results.json; the loggers get the final metrics beside the hyperparameters.
        """
        files = [
            c for c in (self.trainer.callbacks if self.trainer else []) if isinstance(c, RunFilesCallback)
        ]
        results = {
            **results,
            **{key: value for callback in files for key, value in callback.results.items()},
            "output_dir": str(self.output_dir),
            "world_size": self.trainer.world_size if self.trainer is not None else 1,
            # On a CPU the results depend on it: sums are added up in another order.
            "cpu_threads": torch.get_num_threads(),
            "wall_time_s": round(time.perf_counter() - self.started, 2),
        }
        if self.is_global_zero:
            if self.trainer is not None and not self.trainer.fast_dev_run:
                log_final_metrics(self.trainer.loggers, self.config, results.get("metrics", {}))
            results_path = write_results(self.output_dir, results)
            print_outputs(
                f"{title} in {results['wall_time_s']:.1f} s",
                {
                    "run directory": self.output_dir,
                    **paths,
                    **{label: path for callback in files for label, path in callback.written.items()},
                    **logger_directories(self.loggers),
                    "config": self.output_dir / "config.yaml",
                    "results": results_path,
                },
                metrics,
            )
        return results
