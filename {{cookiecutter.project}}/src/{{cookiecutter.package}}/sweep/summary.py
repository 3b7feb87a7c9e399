"""Collect the jobs of a sweep directory and write their table: summary.csv, summary.md and the terminal."""

from __future__ import annotations

import json
import logging
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from ..atomic import csv_text, write_atomically
from ..errors import ConfigurationError
from ..run.directory import FAILURE_FILE, RESULTS_FILE
from .plot import figure_png, plot_file_name, sweep_figure

log = logging.getLogger(__name__)

SWEEP_FILE = "multirun.yaml"
CSV_FILE = "summary.csv"
MARKDOWN_FILE = "summary.md"
OK, FAILED, UNFINISHED = STATUSES = ("ok", "failed", "unfinished")
# Shown for every job that reports them, beside the optimized value.
MAIN_METRICS = ("test/acc", "val/acc", "val/loss")
BEST_MARK = "★"


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


def summarize_sweep(sweep_dir: Path, *, show: bool = True) -> SweepSummary:
    """Write summary.csv, summary.md and summary_<metric>.png into `sweep_dir` and, with `show`, print
    the table, the best job and the failures. Raises ConfigurationError when `sweep_dir` is no sweep."""
    summary = collect_sweep(sweep_dir)
    summary.written["csv"] = write_atomically(summary.sweep_dir / CSV_FILE, summary_csv(summary))
    if summary.ranked:
        try:
            summary.written["plot"] = write_plot(summary)
        except Exception as error:  # a picture is never worth losing the rest of the summary
            log.warning("The sweep's plot could not be drawn: %s", error)
    summary.written["markdown"] = write_atomically(summary.sweep_dir / MARKDOWN_FILE, markdown(summary))
    if show:
        print_summary(summary)
    return summary


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
    return Job(number, directory, overrides, OK if results else UNFINISHED, results)


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


def shared_overrides(summary: SweepSummary) -> list[str]:
    """The overrides every job has alike (the first job's that are not swept)."""
    if not summary.jobs:
        return []
    return [
        override for override in summary.jobs[0].overrides if split_override(override)[0] not in summary.swept
    ]


def present_metrics(summary: SweepSummary) -> list[str]:
    return [name for name in MAIN_METRICS if any(job.metric(name) is not None for job in summary.jobs)]


def summary_csv(summary: SweepSummary) -> str:
    """One row per job: its number, status, whether it is the best, each swept key, the optimized value,
    the main metrics, world size, CPU threads, wall time and epochs as results.json has them, the
    error of a failed job, its directory and all its overrides (ready to paste after `python train.py`)."""
    metrics = present_metrics(summary)
    header = [
        "job",
        "status",
        "best",
        *summary.swept,
        "optimized_metric",
        "optimized_value",
        *metrics,
        "world_size",
        "cpu_threads",
        "wall_time_s",
        "epochs",
        "error",
        "directory",
        "overrides",
    ]
    rows = []
    for job in summary.jobs:
        parameters = job.parameters
        rows.append(
            [
                job.number,
                job.status,
                "true" if job is summary.best else "false",
                *[parameters.get(key, "") for key in summary.swept],
                job.optimized.get("metric", ""),
                blank_if_none(job.value),
                *[blank_if_none(job.metric(name)) for name in metrics],
                blank_if_none(job.results.get("world_size")),
                blank_if_none(job.results.get("cpu_threads")),
                blank_if_none(job.results.get("wall_time_s")),
                blank_if_none(job.results.get("epochs")),
                job.error or "",
                job.directory,
                shlex.join(job.overrides),
            ]
        )
    return csv_text(header, rows)


def blank_if_none(value: Any) -> Any:
    return "" if value is None else value


def format_number(value: Any, digits: str = "#.4g") -> str:
    """4 significant digits, trailing zeros kept so that a column's numbers line up (0.9480, 0.9442)."""
    return "-" if value is None else format(value, digits)


def short_value(text: str) -> str:
    """A swept value for people: a real number with a long tail (a search's draw) to 4 digits;
    anything else as given. summary.csv keeps every digit."""
    try:
        number = float(text)
    except ValueError:
        return text
    return format(number, ".4g") if "." in text and len(text) > 8 else text


def display_table(summary: SweepSummary, *, errors: bool = True) -> tuple[list[str], list[list[str]]]:
    """The table for people (markdown and terminal): headers and one row of text per job. With
    `errors`, a failed job's status says why."""
    metrics = present_metrics(summary)
    optimized = f"{summary.metric} (optimized)" if summary.metric else "optimized"
    headers = ["job", *summary.swept, optimized, *metrics, "world size", "wall time (s)", "epochs", "status"]
    rows = []
    for job in summary.jobs:
        parameters = job.parameters
        rows.append(
            [
                f"{job.number} {BEST_MARK}" if job is summary.best else str(job.number),
                *[short_value(parameters[key]) if key in parameters else "-" for key in summary.swept],
                format_number(job.value),
                *[format_number(job.metric(name)) for name in metrics],
                format_number(job.results.get("world_size"), "d"),
                format_number(job.results.get("wall_time_s"), ".1f"),
                format_number(job.results.get("epochs"), "d"),
                f"failed: {job.error}" if errors and job.status == FAILED else job.status,
            ]
        )
    return headers, rows


def outcome_counts(summary: SweepSummary, statuses: tuple[str, ...] = STATUSES) -> list[str]:
    """'2 ok', '1 failed', ... for the statuses that some job has."""
    counts = {status: sum(job.status == status for job in summary.jobs) for status in statuses}
    return [f"{count} {status}" for status, count in counts.items() if count]


def headline(summary: SweepSummary) -> str:
    ranked_by = f"; ranked by {summary.metric} ({summary.direction})" if summary.metric else ""
    jobs = "1 job" if len(summary.jobs) == 1 else f"{len(summary.jobs)} jobs"
    return f"{jobs}: {', '.join(outcome_counts(summary)) or 'none started'}{ranked_by}"


def outcome_lines(summary: SweepSummary) -> list[str]:
    """The best job (or why there is none), then the failed jobs by error and the unfinished ones."""
    best = summary.best
    if best is not None:
        lines = [
            f"Best: job {best.number}, {summary.metric} = {best.value:.4g} ({summary.direction}), "
            f"in {best.directory}"
        ]
    elif not summary.jobs:
        lines = ["No job of this sweep has started yet: no best job."]
    elif not any(job.status == OK for job in summary.jobs):
        lines = [f"No job of the {len(summary.jobs)} finished: no best job."]
    else:
        lines = ["No finished job records an optimized value in its results.json: no best job."]
    by_error: dict[str, list[int]] = {}
    for job in summary.failed:
        by_error.setdefault(job.error or "", []).append(job.number)
    lines += [f"Failed: {job_list(numbers)}: {error}" for error, numbers in by_error.items()]
    if summary.unfinished:
        numbers = [job.number for job in summary.unfinished]
        why = f"neither {RESULTS_FILE} nor {FAILURE_FILE}: killed or still running"
        lines.append(f"Unfinished ({why}): {job_list(numbers)}")
    return lines


def job_list(numbers: list[int]) -> str:
    return ("job " if len(numbers) == 1 else "jobs ") + ", ".join(map(str, numbers))


def markdown(summary: SweepSummary) -> str:
    headers, rows = display_table(summary)

    def table_row(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    lines = [f"# Sweep {summary.sweep_dir}", "", headline(summary) + ".", ""]
    shared = shared_overrides(summary)
    if shared:
        lines += ["Every job: " + " ".join(f"`{override}`" for override in shared), ""]
    # Numbers are aligned right (markdown's ---:), the swept values and the status left.
    rule = ["---" if header in (*summary.swept, "status") else "---:" for header in headers]
    lines += [table_row(headers), table_row(rule), *map(table_row, rows), ""]
    lines += [f"{line}  " for line in outcome_lines(summary)]
    if "plot" in summary.written:
        lines += ["", f"![{summary.metric} against each swept parameter]({summary.written['plot'].name})"]
    return "\n".join(lines) + "\n"


def write_plot(summary: SweepSummary) -> Path:
    """summary_<metric>.png: the optimized metric of each ranked job against each swept key (the job
    number when nothing was swept), the best job marked."""
    ranked = summary.ranked
    keys = summary.swept or ["job"]
    parameters = {
        key: [str(job.number) if key == "job" else job.parameters.get(key) for job in ranked] for key in keys
    }
    best = summary.best
    left_out = outcome_counts(summary, (FAILED, UNFINISHED))
    title = f"{summary.metric} ({summary.direction}): best job {best.number} = {best.value:.4g}\n"
    title += f"{len(ranked)} of {len(summary.jobs)} jobs shown"
    if left_out:
        title += f" ({', '.join(left_out)})"
    figure = sweep_figure(
        parameters,
        [job.value for job in ranked],
        best=ranked.index(best),
        best_label=f"best: job {best.number}",
        metric=summary.metric,
        title=title,
    )
    return write_atomically(summary.sweep_dir / plot_file_name(summary.metric), figure_png(figure))


def print_summary(summary: SweepSummary) -> None:
    """The table (the best job in bold), then the best job, why jobs failed, and the files written.
    Cells keep their width (headers break at their first space), so that numbers are never cut."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    headers, rows = display_table(summary, errors=False)
    shared = shared_overrides(summary)
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        title=Text(headline(summary)),
        title_justify="left",
        caption=Text("every job: " + shlex.join(shared)) if shared else None,
        caption_justify="left",
    )
    for index, header in enumerate(headers):
        swept = header in summary.swept
        table.add_column(
            header if swept else header.replace(" ", "\n", 1),
            justify="left" if swept or header == "status" else "right",
            no_wrap=True,
            min_width=max(len(row[index]) for row in rows) if rows else None,
        )
    status_styles = {OK: "green", FAILED: "red", UNFINISHED: "yellow"}
    for job, row in zip(summary.jobs, rows, strict=True):
        cells = [Text(cell) for cell in row]
        cells[-1].stylize(status_styles[job.status])
        table.add_row(*cells, style="bold" if job is summary.best else None)
    console = Console()
    if not console.is_terminal:  # a log file or a pipe: no need to squeeze the table into 80 columns
        console.width = 160
    console.print(table)
    for line in outcome_lines(summary):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    names = ", ".join(sorted(path.name for path in summary.written.values()))
    console.print(f"Summary: {names} in {summary.sweep_dir}", markup=False, highlight=False, soft_wrap=True)
