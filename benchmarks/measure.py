"""Run a generated project's commands one at a time and measure each: wall time and peak memory.

Shared by the template's end-to-end benchmarks (wall_time.py, logging_overhead.py). Every command
runs in a temporary working directory of its own, with its output in a log file there that is shown
if it fails. Pairs of commands alternate, and which one goes first swaps every pair, because a shared
machine's speed drifts and one run can leave caches warm for the next.
"""

from __future__ import annotations

import os
import shlex
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measurement:
    seconds: float
    peak_rss: int  # bytes: the process's resident-set peak (a process it started counts on its own)


def run_measured(command: Sequence[str], cwd: Path, env: dict[str, str]) -> Measurement:
    """Run `command` to its end; return its wall time and its peak RSS (from the kernel, via wait4)."""
    log = cwd / "output.log"
    with log.open("wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
    if process.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise SystemExit(f"{shlex.join(command)} failed (exit status {process.returncode}):\n{tail}")
    return Measurement(seconds, usage.ru_maxrss * 1024)  # Linux reports ru_maxrss in KiB


@dataclass(frozen=True)
class Project:
    """A generated project and the interpreter and environment that run its scripts."""

    root: Path
    python: str
    package: str
    env: dict[str, str]
    from_src: bool  # `python` does not have this project's package installed: <root>/src is on PYTHONPATH

    @classmethod
    def open(cls, root: Path, python: str) -> Project:
        """The project at `root`, with `src/` first on PYTHONPATH unless `python` imports it from there."""
        root = root.resolve()
        packages = sorted(
            path.parent.name for path in root.glob("src/*/__init__.py") if path.parent.name != "hydra_plugins"
        )
        if not (root / "train.py").is_file() or not packages:
            raise SystemExit(f"{root} is not a generated project: no train.py or no src/<package>/.")
        package, env = packages[0], dict(os.environ)
        from_src = cls.package_source(python, package, env) != root / "src" / package
        if from_src:  # not installed, or another copy (a demo project's, say) is
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root / "src"), env.get("PYTHONPATH")]))
            found = cls.package_source(python, package, env)
            if found != root / "src" / package:
                raise SystemExit(
                    f"{python} imports {package} from {found}, even with {root / 'src'} first on "
                    "PYTHONPATH; use a --python without that copy installed."
                )
        return cls(root, python, package, env, from_src)

    def describe(self) -> str:
        source = f"{self.root / 'src'} on PYTHONPATH" if self.from_src else "installed"
        return f"project {self.root}, package {self.package} ({source}), python {self.python}"

    @staticmethod
    def package_source(python: str, package: str, env: dict[str, str]) -> Path | None:
        """The directory `python` imports `package` from, or None when it cannot import it."""
        code = f"import {package}; print({package}.__file__)"
        with tempfile.TemporaryDirectory() as directory:  # a neutral cwd: `python -c` puts it on sys.path
            found = subprocess.run(
                [python, "-c", code], cwd=directory, env=env, capture_output=True, text=True
            )
        return Path(found.stdout.strip()).resolve().parent if found.returncode == 0 else None

    @property
    def digits(self) -> Path:
        """The bundled dataset of the default run."""
        return self.root / "src" / self.package / "data" / "digits.npz"

    def train(self, *arguments: str) -> Measurement:
        """`python train.py arguments...`, writing its run directory into a temporary directory."""
        with tempfile.TemporaryDirectory() as directory:
            command = [self.python, str(self.root / "train.py"), *arguments, f"hydra.run.dir={directory}/run"]
            return run_measured(command, Path(directory), self.env)

    def run_python(self, *arguments: str) -> Measurement:
        """`python arguments...` in a temporary directory, with the project's environment."""
        with tempfile.TemporaryDirectory() as directory:
            return run_measured([self.python, *arguments], Path(directory), self.env)


def alternate(
    first: Callable[[], Measurement], second: Callable[[], Measurement], repeats: int
) -> tuple[list[Measurement], list[Measurement]]:
    """Run `first` and `second` `repeats` times each in pairs, the first of each pair swapping every pair."""
    firsts, seconds = [], []
    for pair in range(repeats):
        if pair % 2 == 0:
            firsts.append(first())
            seconds.append(second())
        else:
            seconds.append(second())
            firsts.append(first())
    return firsts, seconds


def median_seconds(runs: Sequence[Measurement]) -> float:
    return statistics.median(run.seconds for run in runs)


def pair_ratios(numerators: Sequence[Measurement], denominators: Sequence[Measurement]) -> list[float]:
    return [a.seconds / b.seconds for a, b in zip(numerators, denominators, strict=True)]


def mib(size: float) -> str:
    return f"{size / 2**20:.0f} MiB"
