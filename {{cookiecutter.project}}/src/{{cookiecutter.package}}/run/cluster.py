"""Runs whose processes a cluster starts (SLURM's srun, torchrun): the run directory they agree on, and
a requeued SLURM job continuing from the checkpoint it left."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

from omegaconf import DictConfig

log = logging.getLogger(__name__)


def slurm_tasks() -> int:
    """How many processes SLURM started for this job step (srun, one task per GPU), or 0 outside SLURM."""
    if "SLURM_JOB_ID" not in os.environ or os.environ.get("SLURM_JOB_NAME") in ("bash", "interactive"):
        return 0
    return int(os.environ.get("SLURM_NTASKS", "0") or 0)


def slurm_run_dir(config: DictConfig) -> None:
    """Under SLURM with several tasks every task names the run directory after the job
    (runs/slurm-<job id>), unless hydra.run.dir was set: the tasks start at different times, and
    a requeued job comes back to its own directory (see resume_requeued_job)."""
    from omegaconf import open_dict, read_write

    user_set = any(o.startswith("hydra.run.dir=") for o in config.hydra.overrides.hydra)
    if slurm_tasks() > 1 and not user_set:
        with read_write(config), open_dict(config):
            config.hydra.run.dir = str(
                Path(config.hydra.run.dir).parent / f"slurm-{os.environ['SLURM_JOB_ID']}"
            )


def is_requeued() -> bool:
    """True in a SLURM job that was requeued (preempted, or out of time with auto-requeue)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def requeued_checkpoint(output_dir: Path) -> Path | None:
    """In a requeued SLURM job, the newest checkpoint it left in its directory: Lightning's
    hpc_ckpt_<n>.ckpt or checkpoints/last.ckpt."""
    if not is_requeued():
        return None
    found = [*output_dir.glob("hpc_ckpt_*.ckpt"), *output_dir.glob("checkpoints/last.ckpt")]
    return max(found, key=lambda path: path.stat().st_mtime) if found else None


def resume_requeued_job(config: DictConfig, output_dir: Path) -> None:
    """A requeued SLURM job continues from the newest checkpoint it left (unless ckpt_path is set)."""
    from omegaconf import open_dict, read_write

    checkpoint = requeued_checkpoint(Path(output_dir))
    if checkpoint is not None and config.get("ckpt_path") is None:
        with read_write(config), open_dict(config):
            config.ckpt_path = str(checkpoint)
        log.info("Requeued by SLURM: continuing from %s", checkpoint)


def is_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def agree_on_run_dir(config: DictConfig) -> None:
    """Under torchrun every node resolves its own start time: the first process (rank 0) publishes
    its run directory in torchrun's rendezvous store and the others take it from there."""
    if not is_torchrun():
        return
    from omegaconf import open_dict, read_write
    from torch.distributed import TCPStore

    store = TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        is_master=False,
        timeout=timedelta(minutes=10),
    )
    key = (
        f"run_dir/{os.environ.get('TORCHELASTIC_RUN_ID')}/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
    )
    if int(os.environ["RANK"]) == 0:
        store.set(key, str(Path(config.hydra.run.dir).resolve()))
        return
    with read_write(config), open_dict(config):
        config.hydra.run.dir = store.get(key).decode()
