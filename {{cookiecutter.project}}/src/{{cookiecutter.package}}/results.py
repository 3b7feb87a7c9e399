"""results.json: the final metrics of a run and where its files are, written once, never overwritten."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigurationError

RESULTS_FILE = "results.json"


def check_output_dir_is_new(output_dir: Path) -> None:
    """Refuse to write into a directory that holds another run's results or checkpoints."""
    checkpoints = output_dir / "checkpoints"
    if (output_dir / RESULTS_FILE).exists() or (checkpoints.is_dir() and any(checkpoints.iterdir())):
        raise ConfigurationError(
            f"{output_dir} already holds the results or checkpoints of another run, which this run "
            "would overwrite. Leave hydra.run.dir at its default or choose a new directory."
        )


def metrics_as_floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Turn Lightning's callback metrics (tensors) into plain floats, sorted by name."""
    return {
        name: float(value.item() if isinstance(value, torch.Tensor) else value)
        for name, value in sorted(metrics.items())
    }


def write_results(output_dir: Path, results: Mapping[str, Any]) -> Path:
    """Write results.json atomically, so a crash never leaves half a file."""
    path = output_dir / RESULTS_FILE
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(temporary, path)
    return path
