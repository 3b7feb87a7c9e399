"""A sweep as its directory tells it: each job's overrides, status and results.json, the keys that were
swept and the best job. Read from the files each job left, not from memory: jobs may have run in other
processes or on other machines."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from ..errors import ConfigurationError
from ..run.directory import FAILURE_FILE, RESULTS_FILE

SWEEP_FILE = "multirun.yaml"
OK, FAILED, UNFINISHED = STATUSES = ("ok", "failed", "unfinished")
SUBMITIT_GAVE_UP = b"Job not requeued because: timed-out too many times"
TIME_LIMIT = (
    "started, but stopped by the time limit (hydra.launcher.timeout_min) each time submitit requeued it; "
    "raise hydra.launcher.timeout_min and continue the sweep with resume=auto"
)


@dataclass
class Job:
    """One job of a sweep as its directory tells it. `results` is its results.json ({} without one),
    `error` the one-line reason a failed job gives in failure.json."""

    number: int
    directory: Path
    overrides: list[str]
    status: str
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def parameters(self) -> dict[str, str]:
        """Each override's key and value as Hydra recorded it: {'optimizer.lr': '0.001'}."""
        return dict(split_override(override) for override in self.overrides)

    @property
    def optimized(self) -> dict[str, Any]:
        """{metric, value, direction}: what train.py returned to the sweeper, as results.json records it."""
        return self.results.get("optimized") or {}

    @property
    def value(self) -> float | None:
        return finite_or_none(self.optimized.get("value"))

    def metric(self, name: str) -> float | None:
        return finite_or_none((self.results.get("metrics") or {}).get(name))


@dataclass
class SweepSummary:
    """The jobs of one sweep (by number), the override keys that vary between them, the metric they were
    optimized for and the best job by it; `written` names the files the summary wrote."""

    sweep_dir: Path
    jobs: list[Job]
    swept: list[str]
    metric: str | None
    direction: str | None
    best: Job | None
    written: dict[str, Path] = field(default_factory=dict)

    @property
    def failed(self) -> list[Job]:
        return [job for job in self.jobs if job.status == FAILED]

    @property
    def unfinished(self) -> list[Job]:
        return [job for job in self.jobs if job.status == UNFINISHED]

    @property
    def ranked(self) -> list[Job]:
        """The finished jobs with a value of the metric the sweep optimized: those the best is chosen from."""
        return [job for job in self.jobs if is_comparable(job, self.metric, self.direction)]


def split_override(override: str) -> tuple[str, str]:
    """'+trainer.limit_val_batches=2' -> ('trainer.limit_val_batches', '2'); a deletion
    ('~callbacks.progress_bar', with or without '=null') -> ('callbacks.progress_bar', 'deleted')."""
    key, _, value = override.partition("=")
    if key.startswith("~"):
        return key.lstrip("~"), "deleted"
    return key.lstrip("+"), value


def finite_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def is_comparable(job: Job, metric: str | None, direction: str | None) -> bool:
    return (
        job.status == OK
        and job.value is not None
        and job.optimized.get("metric") == metric
        and job.optimized.get("direction") == direction
    )


def collect_sweep(sweep_dir: Path) -> SweepSummary:
    """Read every job of `sweep_dir` (sorted by number) and choose the best, writing nothing."""
    check_sweep_dir(Path(sweep_dir))
    sweep_dir = Path(sweep_dir).absolute()
    jobs = [read_job(number, directory) for number, directory in find_job_dirs(sweep_dir).items()]
    finished = [job for job in jobs if job.status == OK and job.optimized]
    # Jobs are ranked by the metric and direction of the first finished one: the others are compared
    # with it only when they optimized the same (a sweep over optimized_metric has no single best).
    metric = finished[0].optimized.get("metric") if finished else None
    direction = finished[0].optimized.get("direction") if finished else None
    swept = swept_keys(jobs, declared_sweep_keys(sweep_dir))
    summary = SweepSummary(sweep_dir, jobs, swept, metric, direction, best=None)
    if summary.ranked:  # ties go to the first job
        choose = min if direction == "minimize" else max
        summary.best = choose(summary.ranked, key=lambda job: job.value)
    return summary


def check_sweep_dir(path: Path) -> None:
    """Refuse a path that is not a sweep directory, saying what it is instead and what to pass."""
    example = "e.g. logs/train/multiruns/<time>"
    if not path.exists():
        raise ConfigurationError(f"{path} does not exist; pass the directory of a sweep, {example}.")
    if not path.is_dir():
        raise ConfigurationError(f"{path} is a file; pass the directory of a sweep, {example}.")
    if (path / SWEEP_FILE).is_file() or find_job_dirs(path):
        return
    if (path / ".hydra").is_dir():
        if (path.parent / SWEEP_FILE).is_file():
            raise ConfigurationError(f"{path} is one job of the sweep {path.parent}; pass {path.parent}.")
        raise ConfigurationError(f"{path} is the directory of a single run, not of a sweep ({example}).")
    sweeps = [found.parent for found in path.glob(f"*/{SWEEP_FILE}")]
    if sweeps:
        newest = max(sweeps, key=lambda sweep: sweep.stat().st_mtime)
        raise ConfigurationError(f"{path} holds {len(sweeps)} sweeps; pass one of them, e.g. {newest}.")
    raise ConfigurationError(
        f"{path} is not the directory of a sweep: it has no {SWEEP_FILE} and no job folders (0, 1, ...); "
        f"pass the directory of a sweep, {example}."
    )


def find_job_dirs(sweep_dir: Path) -> dict[int, Path]:
    """The job folders of a sweep by job number, in order: those named by a number (Hydra's default
    hydra.sweep.subdir), and any other that holds a job's .hydra folder with its number."""
    jobs = {}
    for directory in sweep_dir.iterdir():
        if not directory.is_dir():
            continue
        if directory.name.isdigit():
            jobs[int(directory.name)] = directory
        elif (number := recorded_job_number(directory)) is not None:
            jobs[number] = directory
    return dict(sorted(jobs.items()))


def recorded_job_number(directory: Path) -> int | None:
    hydra_file = directory / ".hydra" / "hydra.yaml"
    if not hydra_file.is_file():
        return None
    job = ((read_yaml(hydra_file) or {}).get("hydra") or {}).get("job") or {}
    number = job.get("num")  # '???' in a single run's directory
    return number if isinstance(number, int) else None


def read_job(number: int, directory: Path) -> Job:
    """A job is failed when it left failure.json (Hydra counted it failed, even if it wrote results.json
    before failing), ok when it left results.json, and unfinished with neither (killed, or running)."""
    overrides = [str(override) for override in read_yaml(directory / ".hydra" / "overrides.yaml") or []]
    results: dict[str, Any] = {}
    if (directory / RESULTS_FILE).is_file():
        try:
            results = json.loads((directory / RESULTS_FILE).read_text())
        except (OSError, ValueError) as error:
            return Job(number, directory, overrides, FAILED, error=f"{RESULTS_FILE} cannot be read: {error}")
    if (directory / FAILURE_FILE).is_file():
        return Job(number, directory, overrides, FAILED, results, failure_reason(directory / FAILURE_FILE))
    if not results and stopped_by_time_limit(directory):
        return Job(number, directory, overrides, FAILED, error=TIME_LIMIT)
    return Job(number, directory, overrides, OK if results else UNFINISHED, results)


def stopped_by_time_limit(directory: Path) -> bool:
    """Whether submitit logged, into the job's log, that it stopped the job at its time limit for good
    (it is killed then, before it can leave failure.json)."""
    for log_file in directory.glob("*.log"):
        with open(log_file, "rb") as file:
            file.seek(max(0, log_file.stat().st_size - 65536))
            if SUBMITIT_GAVE_UP in file.read():
                return True
    return False


def failure_reason(path: Path) -> str:
    """The first line of a failure.json's error, after its type when it was a bug rather than bad input."""
    try:
        failure = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        return f"{path.name} cannot be read: {error}"
    lines = str(failure.get("error") or "").strip().splitlines()
    error_type = str(failure.get("type") or "error")
    if not lines:
        return error_type
    return lines[0] if failure.get("user_error") else f"{error_type}: {lines[0]}"


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def declared_sweep_keys(sweep_dir: Path) -> set[str]:
    """The keys that the sweep's command line (or hydra.sweeper.params) gives several values: they are
    swept even when one job ran, or when the jobs that ran happen to share a value."""
    hydra = (read_yaml(sweep_dir / SWEEP_FILE) or {}).get("hydra") or {}
    overrides = list((hydra.get("overrides") or {}).get("task") or [])
    params = (hydra.get("sweeper") or {}).get("params")
    if isinstance(params, dict):  # the search space of Hydra's basic and Optuna sweepers
        overrides += [f"{key}={value}" for key, value in params.items()]
    parser, keys = OverridesParser.create(), set()
    for line in overrides:
        try:
            [override] = parser.parse_overrides([str(line)])
        except HydraException:  # a sweeper's own syntax: its keys still vary between the jobs
            continue
        if override.is_sweep_override():
            keys.add(override.key_or_group + (f"@{override.package}" if override.package else ""))
    return keys


def swept_keys(jobs: list[Job], declared: set[str]) -> list[str]:
    """The override keys whose value differs between jobs (missing from some counts as differing), and the
    declared sweeps, in the order of the command line."""
    keys = dict.fromkeys(key for job in jobs for key in job.parameters)
    return [key for key in keys if key in declared or len({job.parameters.get(key) for job in jobs}) > 1]
