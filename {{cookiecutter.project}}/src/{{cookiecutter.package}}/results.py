"""results.json: the final metrics of a run and where its files are, written once, never overwritten."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

RESULTS_FILE = "results.json"


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
