"""Rebuild the summary of a sweep from its directory, e.g. after it was killed or ran on a cluster:

    python -m {{ cookiecutter.package }}.sweep logs/train/multiruns/<time>

writes summary.csv, summary.md and summary_<metric>.png into it and prints the table of its jobs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigurationError
from ..run.command import print_error
from .summary import summarize_sweep


def main(arguments: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}",
        description="Summarize a Hydra sweep: a table of its jobs with the best marked, as summary.csv, "
        "summary.md and a plot of the optimized metric, written into the sweep directory.",
    )
    parser.add_argument("sweep_dir", type=Path, help="the sweep directory, e.g. logs/train/multiruns/<time>")
    sweep_dir = parser.parse_args(arguments).sweep_dir
    try:
        summarize_sweep(sweep_dir)
    except (ConfigurationError, OSError) as error:
        print_error(error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
