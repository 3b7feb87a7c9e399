"""What the logging callbacks (confusion matrix, per-class metrics, sample predictions, curves) cost.

Runs a generated project's default `python train.py` with and without them, alternating, in one
sitting (which goes first swaps every pair), and prints the median wall time of each and their
ratio; then the start-up commands (`--help`, `debug=fdr`) the same way. Times are whole commands,
interpreter start-up included. The project's package comes from `<project>/src` (PYTHONPATH) when
`--python` does not have it installed.

    python benchmarks/logging_overhead.py --project build/demo/image-classifier --repeats 4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from measure import Project, alternate, median_seconds, pair_ratios

WITHOUT = [
    f"callbacks.{name}=null"
    for name in ("confusion_matrix", "per_class_metrics", "sample_predictions", "learning_curves")
]


def compare(project: Project, label: str, base: list[str], repeats: int) -> None:
    without, with_ = alternate(lambda: project.train(*base, *WITHOUT), lambda: project.train(*base), repeats)
    spread = ", ".join(f"{ratio:.3f}" for ratio in pair_ratios(with_, without))
    without_seconds, with_seconds = median_seconds(without), median_seconds(with_)
    print(
        f"{label:<16} without {without_seconds:6.2f} s  with {with_seconds:6.2f} s"
        f"  ratio {with_seconds / without_seconds:.3f}  (pairs: {spread})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, required=True, help="a generated project's directory")
    parser.add_argument("--python", default=sys.executable, help="the project's interpreter")
    parser.add_argument("--repeats", type=int, default=4)
    arguments = parser.parse_args()
    project = Project.open(arguments.project, arguments.python)
    compare(project, "python train.py", [], arguments.repeats)
    compare(project, "debug=fdr", ["debug=fdr"], arguments.repeats)
    compare(project, "--help", ["--help"], arguments.repeats)


if __name__ == "__main__":
    main()
