"""What a run shows the user: the config as a tree, and where its outputs went."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import rich
import rich.console
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf

# Groups first in this order, then the remaining top-level keys.
CONFIG_ORDER = ("data", "model", "optimizer", "scheduler", "trainer", "callbacks", "logger", "paths")


def config_tree(config: DictConfig) -> rich.tree.Tree:
    """Return the resolved config as a rich tree, one branch per group."""
    tree = rich.tree.Tree("config", style="bold", guide_style="dim")
    groups = [key for key in CONFIG_ORDER if key in config]
    groups += [key for key in config if key not in groups]
    for key in groups:
        branch = tree.add(str(key), style="bold cyan")
        value = config[key]
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        branch.add(rich.syntax.Syntax(text.rstrip(), "yaml", theme="ansi_dark", background_color="default"))
    return tree


def print_config(config: DictConfig) -> None:
    rich.print(config_tree(config))


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
