"""What the logging callbacks (confusion matrix, per-class metrics, sample predictions, curves) cost.

Runs a generated project's default `python train.py` with and without them, alternating, in one
sitting, and prints the median wall time of each and their ratio; then the start-up commands
(`--help`, `debug=fdr`) the same way. Times are whole commands, interpreter start-up included.

    python benchmarks/logging_overhead.py --project build/demo/image-classifier --repeats 4
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WITHOUT = [
    f"callbacks.{name}=null"
    for name in ("confusion_matrix", "per_class_metrics", "sample_predictions", "learning_curves")
]


def timed(python: str, project: Path, arguments: list[str]) -> float:
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        subprocess.run(
            [python, str(project / "train.py"), *arguments, f"hydra.run.dir={directory}/run"],
            cwd=directory,
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started


def compare(python: str, project: Path, label: str, base: list[str], repeats: int) -> None:
    runs: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(repeats):
        runs["without"].append(timed(python, project, [*base, *WITHOUT]))
        runs["with"].append(timed(python, project, base))
    without, with_ = (statistics.median(runs[key]) for key in ("without", "with"))
    spread = ", ".join(f"{w / o:.3f}" for w, o in zip(runs["with"], runs["without"], strict=True))
    print(
        f"{label:<16} without {without:6.2f} s  with {with_:6.2f} s  ratio {with_ / without:.3f}"
        f"  (pairs: {spread})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, required=True, help="a generated project, installed")
    parser.add_argument("--python", default=sys.executable, help="the project's interpreter")
    parser.add_argument("--repeats", type=int, default=4)
    arguments = parser.parse_args()
    project = arguments.project.resolve()
    compare(arguments.python, project, "python train.py", [], arguments.repeats)
    compare(arguments.python, project, "debug=fdr", ["debug=fdr"], arguments.repeats)
    compare(arguments.python, project, "--help", ["--help"], arguments.repeats)


if __name__ == "__main__":
    main()
