"""What the training run that wrote a checkpoint recorded beside it (results.json, config.yaml, plots/),
read for the model card."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

CONFUSION_MATRIX = "test_confusion_matrix.png"


class RunRecord:
    """What the run that wrote a checkpoint recorded: its results, its config, its pictures. A file
    that is missing (a checkpoint copied away from its run directory) leaves its part empty."""

    def __init__(self, checkpoint: str | Path, hyperparameters: Mapping[str, Any]) -> None:
        self.checkpoint = Path(checkpoint)
        self.run_dir = self.checkpoint.parent.parent
        self.hyperparameters = dict(hyperparameters)  # the checkpoint's, as the loaded model holds them
        self.results = _read(self.run_dir / "results.json", json.loads)
        self.config = _read(self.run_dir / "config.yaml", yaml.safe_load)

    @property
    def test_metrics(self) -> dict[str, float]:
        metrics = self.results.get("metrics", {})
        return {name: float(value) for name, value in metrics.items() if name.startswith("test/")}

    @property
    def confusion_matrix(self) -> Path | None:
        path = self.run_dir / "plots" / CONFUSION_MATRIX
        return path if path.is_file() else None


def _read(path: Path, parse) -> dict[str, Any]:
    try:
        return parse(path.read_text()) or {}
    except (OSError, ValueError, yaml.YAMLError):
        return {}


def base_model(hyperparameters: Mapping[str, Any]) -> str | None:
    """The Hub repository of the pretrained weights training started from (None: from scratch, or a
    local weights file the Hub cannot name)."""
    if not hyperparameters.get("pretrained"):
        return None
    from ..models.preprocessing import pretrained_hub_id

    return pretrained_hub_id(str(hyperparameters["backbone"]))


def data_source(config: Mapping[str, Any]) -> str:
    """The data module and where it read from, e.g. `ImageFolderDataModule (root: photos/)`."""
    data = config.get("data") or {}
    module = str(data.get("_target_", "unknown data")).rsplit(".", 1)[-1]
    where = [f"{key}: {data[key]}" for key in ("name", "root", "csv_path") if data.get(key)]
    if module == "DigitsDataModule":
        where.append("the 8x8 UCI handwritten digits bundled with the project")
    return f"{module} ({', '.join(where)})" if where else module
