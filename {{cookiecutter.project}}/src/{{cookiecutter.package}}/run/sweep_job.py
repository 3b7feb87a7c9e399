"""A job of a sweep whose directory already holds its earlier start: the sweep was continued with
resume=auto, or a launcher requeued the job (submitit after a time-out, SLURM after preemption). A job
that finished is not run again, one that was stopped continues from its last.ckpt, one that failed
starts again. Safe because sweep/guard.py lets a sweep into a directory only when it is new, or holds
this same sweep and resume=auto was given, and gives every job its own folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict, read_write

from .directory import CHECKPOINT_DIR, FAILURE_FILE, RESULTS_FILE, start_checkpoint

log = logging.getLogger(__name__)


def is_sweep_job() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def finished_sweep_job(config: DictConfig) -> dict[str, Any] | None:
    """The results.json of this sweep job when it finished before, else None."""
    results = Path(config.paths.output_dir) / RESULTS_FILE
    if not is_sweep_job() or not results.is_file():
        return None
    print(f"This job finished before: its results stay in {results}", flush=True)
    return json.loads(results.read_text())


def resume_sweep_job(config: DictConfig, output_dir: Path) -> None:
    """Continue this sweep job from the last.ckpt in its own directory (from the start without one)."""
    if not is_sweep_job():
        return
    output_dir = Path(output_dir)
    (output_dir / FAILURE_FILE).unlink(missing_ok=True)  # a failed job is tried again
    last = output_dir / CHECKPOINT_DIR / "last.ckpt"
    start = start_checkpoint(config)
    if start is not None and Path(start).expanduser().resolve().is_relative_to(output_dir.resolve()):
        return  # a requeued SLURM job already continues from its newest checkpoint here
    if last.is_file():
        with read_write(config), open_dict(config):
            config.ckpt_path = str(last)
        log.info("Continuing this job from %s", last)
