"""resume=auto: find the newest unfinished run of the same config, to continue it in its own directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigurationError
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


def flat(content: Any, key: str = "") -> dict[str, Any]:
    """A nested config as {dotted.key: value}."""
    if not isinstance(content, dict) or not content:
        return {key: content}
    return {
        dotted: value
        for name, inner in content.items()
        for dotted, value in flat(inner, f"{key}.{name}" if key else str(name)).items()
    }


def settings_changed(run_dir: Path, config: DictConfig) -> list[str]:
    """The keys whose values differ between the run saved in `run_dir` and `config`, as key=saved->new."""
    saved = flat(what_it_trains(OmegaConf.load(run_dir / ".hydra" / "config.yaml")))
    wanted = flat(what_it_trains(config))
    return [
        f"{key}={saved.get(key)}->{wanted.get(key)}"
        for key in sorted(set(saved) | set(wanted))
        if saved.get(key) != wanted.get(key)
    ]


def check_unfinished_run(run_dir: Path, config: DictConfig) -> bool:
    """resume=auto with hydra.run.dir given: True when that directory holds an unfinished run of this
    config to continue, False when it holds no unfinished run; a run of other settings is refused."""
    if not (run_dir / CHECKPOINT_DIR / "last.ckpt").is_file() or (run_dir / RESULTS_FILE).exists():
        return False
    changed = settings_changed(run_dir, config) if (run_dir / ".hydra" / "config.yaml").is_file() else []
    if changed:
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise ConfigurationError(
            f"resume=auto: {run_dir} holds a run made with other settings ({shown}). Continue it with the "
            f"settings it was made with, or start a new run from its state elsewhere: "
            f"ckpt_path={run_dir / CHECKPOINT_DIR / 'last.ckpt'} hydra.run.dir=<a new directory>."
        )
    return True
