"""A run directory: whether it may be used, results.json written once and atomically, failure marks."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..atomic import write_atomically
from ..errors import ConfigurationError
from .lock import LOCK_FILE

RESULTS_FILE = "results.json"
# Written in a sweep job's directory when the job failed, so summaries can say which and why.
FAILURE_FILE = "failure.json"
CHECKPOINT_DIR = "checkpoints"


def start_checkpoint(config: DictConfig) -> str | None:
    """The checkpoint a run starts from (`ckpt_path`), or None; eval's required ??? counts as None here."""
    if "ckpt_path" not in config or OmegaConf.is_missing(config, "ckpt_path"):
        return None
    return config.ckpt_path


def has_checkpoints(run_dir: Path) -> bool:
    checkpoints = run_dir / CHECKPOINT_DIR
    return checkpoints.is_dir() and any(checkpoints.glob("*.ckpt"))


def resumes_inside(run_dir: Path, resume_from: str | None) -> bool:
    """True when the run continues from a checkpoint inside `run_dir` (its own earlier run)."""
    if resume_from is None:
        return False
    return Path(resume_from).expanduser().resolve().is_relative_to(Path(run_dir).resolve())


def check_run_dir_is_free(
    run_dir: Path,
    resume_from: str | None = None,
    requeued: bool = False,
    written_by_other_tasks: Collection[str] = (),
) -> None:
    """Before Hydra writes anything: refuse a directory holding another run or anything else (a user's
    own files), unless this run continues the run it holds (from a checkpoint in it, or requeued).
    `written_by_other_tasks`: names the other tasks of this SLURM job may have written there already
    (each knows the directory from its start, and Hydra writes its files in every task)."""
    run_dir = Path(run_dir)
    check_output_dir_is_new(run_dir, resume_from)
    if requeued or resumes_inside(run_dir, resume_from) or not run_dir.is_dir():
        return
    ignored = {LOCK_FILE, *written_by_other_tasks}
    found = sorted(entry.name for entry in run_dir.iterdir() if entry.name not in ignored)
    if found:
        shown = ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
        raise ConfigurationError(
            f"{run_dir} is not empty ({shown}): a run writes config.yaml, .hydra/, logs and checkpoints "
            "there and would overwrite or mix with what it holds. Leave hydra.run.dir at its default or "
            "choose a new or empty directory."
        )


def check_output_dir_is_new(run_dir: Path, resume_from: str | None = None) -> None:
    """Refuse a directory that holds a finished run, or checkpoints this run did not resume from."""
    run_dir = Path(run_dir)
    if (run_dir / RESULTS_FILE).exists():
        raise ConfigurationError(
            f"{run_dir} already holds the results of a finished run, which this run would overwrite. "
            "Leave hydra.run.dir at its default or choose a new directory."
        )
    if has_checkpoints(run_dir) and not resumes_inside(run_dir, resume_from):
        last = run_dir / CHECKPOINT_DIR / "last.ckpt"
        fix = (
            f"Continue that run with resume=auto (or ckpt_path={last}), or choose a new directory."
            if last.exists()  # a run that stopped in its first minute may have only a best checkpoint
            else "Choose a new directory."
        )
        raise ConfigurationError(
            f"{run_dir} already holds the checkpoints of another run, which this run would overwrite. {fix}"
        )


def write_json_atomically(path: Path, content: Mapping[str, Any]) -> Path:
    """Write JSON to a temporary file beside `path`, then rename: a crash never leaves half a file."""
    return write_atomically(path, json.dumps(content, indent=2) + "\n")


def write_results(run_dir: Path, results: Mapping[str, Any]) -> Path:
    return write_json_atomically(Path(run_dir) / RESULTS_FILE, results)


def metrics_as_floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Turn Lightning's callback metrics (tensors) into plain floats, sorted by name."""
    return {name: float(value) for name, value in sorted(metrics.items())}
