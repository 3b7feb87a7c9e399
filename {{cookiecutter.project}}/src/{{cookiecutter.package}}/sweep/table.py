"""The table of a sweep's jobs as text: summary.csv (every digit), and the rows people read in
summary.md and the terminal (numbers to 4 digits, the best marked, why jobs failed)."""

from __future__ import annotations

import shlex
from typing import Any

from ..atomic import csv_text
from ..run.directory import FAILURE_FILE, RESULTS_FILE
from .jobs import FAILED, OK, STATUSES, SweepSummary, split_override

# Shown for every job that reports them, beside the optimized value.
MAIN_METRICS = ("test/acc", "val/acc", "val/loss")
BEST_MARK = "★"


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


def markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def markdown(summary: SweepSummary) -> str:
    headers, rows = display_table(summary)
    lines = [f"# Sweep {summary.sweep_dir}", "", headline(summary) + ".", ""]
    shared = shared_overrides(summary)
    if shared:
        lines += ["Every job: " + " ".join(f"`{override}`" for override in shared), ""]
    # Numbers are aligned right (markdown's ---:), the swept values and the status left.
    rule = ["---" if header in (*summary.swept, "status") else "---:" for header in headers]
    lines += [markdown_row(headers), markdown_row(rule), *map(markdown_row, rows), ""]
    lines += [f"{line}  " for line in outcome_lines(summary)]
    if "plot" in summary.written:
        lines += ["", f"![{summary.metric} against each swept parameter]({summary.written['plot'].name})"]
    return "\n".join(lines) + "\n"
