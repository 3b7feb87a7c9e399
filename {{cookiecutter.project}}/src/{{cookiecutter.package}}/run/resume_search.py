"""resume=auto: find the newest unfinished run of the same config, to continue it in its own directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .directory import CHECKPOINT_DIR, RESULTS_FILE

# Keys that say how to start a run rather than what it trains: a run resumed with them is the same run.
START_KEYS = ("resume", "ckpt_path")


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
