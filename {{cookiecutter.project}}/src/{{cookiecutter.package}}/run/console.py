"""What a run shows the user: its config, and where its outputs went."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import rich.console
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def group_choices() -> dict[str, str]:
    """The option chosen for each config group of this Hydra run (data=digits, ...), when Hydra runs it."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    choices = HydraConfig.get().runtime.choices
    # Hydra lists them last-composed first; the defaults list's order reads better.
    return {
        str(group): str(option)
        for group, option in reversed(choices.items())
        if not str(group).startswith("hydra")
    }


def print_config(saved: Path) -> None:
    """Log the run's config in one line (the groups it chose; each process logs the values people tune
    when it starts); every value is in `saved`, and `--cfg job` prints them all without running."""
    chosen = " ".join(f"{group}={option}" for group, option in group_choices().items() if option != "None")
    log.info("Config: %s; every value in %s", chosen or "composed", saved)


def save_config(config: DictConfig, output_dir: Path) -> Path:
    """Save the resolved config of the run as config.yaml in its output directory."""
    path = output_dir / "config.yaml"
    OmegaConf.save(config, path, resolve=True)
    return path


def print_outputs(title: str, paths: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
    """Print where the run wrote its files (those that exist) and its final metrics."""
    console = rich.console.Console(soft_wrap=True)  # long paths stay whole, ready to copy
    console.print(f"\n[bold]{title}[/bold]")
    width = max(map(len, [*paths, *metrics]), default=0)
    for name, path in paths.items():
        if path and Path(path).exists():
            console.print(f"  {name:<{width}}  {path}", highlight=False)
    for name, value in metrics.items():
        console.print(f"  {name:<{width}}  {value:.4f}", highlight=False)
