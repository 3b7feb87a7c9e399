"""What a generated project's default run costs against the plain script, and how fast it starts.

In one sitting, one command at a time (never two at once: on a small machine they slow each other
down many times over):

1. `python train.py` (the default run, start-up included) against `python plain_timm_digits.py
   --digits <the project's digits.npz>`, alternated `--repeats` times: each pair's ratio, the ratio of
   the medians, the min and max of the pairs' ratios, and each command's peak RSS;
2. start-up: `python train.py --help` (median seconds), then `python train.py debug=fdr` against
   importing the stack (`python -c "import torch, torchvision, timm, lightning, hydra, torchmetrics"`),
   alternated `--startup-repeats` times, with the same figures.

Every command runs in a temporary directory of its own (train.py with hydra.run.dir there). The
project's package is used as installed for `--python`, or from `<project>/src` through PYTHONPATH
when it is not installed. Before the first measurement the stack import and `--help` run once
untimed, so no figure reads a cold file cache. The load average is printed at the start and the end:
other work on the machine distorts every figure.

    python benchmarks/wall_time.py --project build/demo/image-classifier --repeats 3
    python benchmarks/wall_time.py --project <project> --only startup --startup-repeats 9
    python benchmarks/wall_time.py --project <project> --plain-args="--epochs 3" -- trainer.max_epochs=3
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
from pathlib import Path

from measure import Measurement, Project, alternate, median_seconds, mib, pair_ratios

PLAIN_SCRIPT = Path(__file__).resolve().parent / "plain_timm_digits.py"
STACK_IMPORT = "import torch, torchvision, timm, lightning, hydra, torchmetrics"
# The targets of the performance issue, printed beside the figures.
TRAIN_TARGET = 1.2  # train.py / plain script, wall time
HELP_TARGET = 0.5  # seconds
FDR_TARGET = 1.1  # debug=fdr / stack import


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", type=Path, required=True, help="a generated project's directory")
    parser.add_argument(
        "--python", default=sys.executable, help="the project's interpreter (default: this one)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="train.py / plain script pairs (default: 3)")
    parser.add_argument(
        "--startup-repeats", type=int, default=5, help="--help runs and debug=fdr / import pairs (default: 5)"
    )
    parser.add_argument(
        "--only", choices=("train", "startup"), default=None, help="measure one part only (default: both)"
    )
    parser.add_argument(
        "--plain-script", type=Path, default=PLAIN_SCRIPT, help="the plain baseline (default: %(default)s)"
    )
    parser.add_argument(
        "--plain-args",
        default="",
        help='more arguments for the plain script, one string: --plain-args="--epochs 3"',
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        help="Hydra overrides appended to every train.py command (after --, e.g. -- trainer.max_epochs=3)",
    )
    args = parser.parse_args(argv)
    for name in ("repeats", "startup_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def report_pairs(
    label: str, runs: list[Measurement], baseline_label: str, baselines: list[Measurement], target: float
) -> None:
    """Print each pair, each command's median time and peak RSS, and the ratios against the target."""
    ratios = pair_ratios(runs, baselines)
    for pair, (run, baseline, ratio) in enumerate(zip(runs, baselines, ratios, strict=True), start=1):
        print(
            f"  pair {pair}: {label} {run.seconds:6.2f} s | {baseline_label} {baseline.seconds:6.2f} s"
            f" | ratio {ratio:.3f}",
            flush=True,
        )
    width = max(len(label), len(baseline_label))
    for name, measured in ((label, runs), (baseline_label, baselines)):
        peaks = [run.peak_rss for run in measured]
        print(
            f"  {name:<{width}}  median {median_seconds(measured):6.2f} s"
            f"  peak RSS median {mib(statistics.median(peaks))} (max {mib(max(peaks))})"
        )
    # The verdict reads the pairs' median: a pair's two runs share the machine's load of the moment.
    paired = statistics.median(ratios)
    print(
        f"  ratio of the medians {median_seconds(runs) / median_seconds(baselines):.3f}; per pair: median"
        f" {paired:.3f}, min {min(ratios):.3f}, max {max(ratios):.3f}"
        f" (target <= {target}: {'met' if paired <= target else 'NOT met'})",
        flush=True,
    )


def load_average() -> str:
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    project = Project.open(args.project, args.python)
    overrides = args.overrides
    plain_command = [str(args.plain_script.resolve()), "--digits", str(project.digits)]
    plain_command += shlex.split(args.plain_args)
    print(project.describe())
    if overrides:
        print(f"train.py overrides: {' '.join(overrides)}")
    print(f"load average (1, 5, 15 min) at the start: {load_average()}", flush=True)
    project.run_python("-c", STACK_IMPORT)  # warm the file cache, untimed
    project.train("--help", *overrides)

    if args.only in (None, "train"):
        print(
            f"\npython train.py against python {args.plain_script.name} {shlex.join(plain_command[1:])},"
            f" {args.repeats} pairs:",
            flush=True,
        )
        train, plain = alternate(
            lambda: project.train(*overrides), lambda: project.run_python(*plain_command), args.repeats
        )
        report_pairs("train.py", train, "plain", plain, TRAIN_TARGET)

    if args.only in (None, "startup"):
        print(f"\nstart-up, {args.startup_repeats} runs of each:", flush=True)
        helps = [project.train("--help", *overrides) for _ in range(args.startup_repeats)]
        help_seconds = median_seconds(helps)
        print(
            f"  train.py --help  median {help_seconds:.3f} s"
            f" (target <= {HELP_TARGET} s: {'met' if help_seconds <= HELP_TARGET else 'NOT met'});"
            f" runs: {', '.join(f'{run.seconds:.3f}' for run in helps)}",
            flush=True,
        )
        fdr, imports = alternate(
            lambda: project.train("debug=fdr", *overrides),
            lambda: project.run_python("-c", STACK_IMPORT),
            args.startup_repeats,
        )
        print(f'  train.py debug=fdr against python -c "{STACK_IMPORT}":')
        report_pairs("debug=fdr", fdr, "import", imports, FDR_TARGET)

    print(f"\nload average (1, 5, 15 min) at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
