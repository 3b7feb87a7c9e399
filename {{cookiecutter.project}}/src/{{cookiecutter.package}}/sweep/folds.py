"""Cross-validation in a sweep: the jobs that differ only in data.fold form a group, and each metric of a
group is reported as its mean and standard deviation across the folds (summary_folds.csv, a section of
summary.md and a table after the job table)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from ..atomic import csv_text
from .jobs import OK, Job, SweepSummary
from .table import format_number, markdown_row, short_value

FOLD_KEY = "data.fold"
# The model's metrics: a learning rate (lr/...) is the same in every fold.
STAGES = ("train/", "val/", "test/")
FOLDS_CSV_FILE = "summary_folds.csv"
NUMBER_COLUMNS = ("mean", "std", "folds")


@dataclass
class FoldStatistic:
    """One metric of a group: its value in each finished fold that reports it."""

    metric: str
    values: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        """The sample standard deviation (n - 1), the spread one would expect of another fold; None for
        one fold."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None


@dataclass
class FoldGroup:
    """The jobs that share every swept value but data.fold (`parameters`: those values) and the mean and
    standard deviation of each metric across their finished folds."""

    parameters: dict[str, str]
    jobs: list[Job]
    statistics: list[FoldStatistic]

    def folds_text(self, statistic: FoldStatistic) -> str:
        """How many folds a metric comes from: '5', or '4 of 5' when a job failed or did not finish."""
        count = len(statistic.values)
        return str(count) if count == len(self.jobs) else f"{count} of {len(self.jobs)}"


def fold_groups(summary: SweepSummary) -> list[FoldGroup]:
    """The groups of a sweep over data.fold, in the order of their first job; none for other sweeps."""
    if FOLD_KEY not in summary.swept:
        return []
    others = [key for key in summary.swept if key != FOLD_KEY]
    groups: dict[tuple[str | None, ...], list[Job]] = {}
    for job in summary.jobs:
        parameters = job.parameters
        groups.setdefault(tuple(parameters.get(key) for key in others), []).append(job)
    return [
        FoldGroup(
            {key: value for key, value in zip(others, values, strict=True) if value is not None},
            jobs,
            fold_statistics(jobs, summary.metric),
        )
        for values, jobs in groups.items()
    ]


def fold_statistics(jobs: list[Job], optimized_metric: str | None) -> list[FoldStatistic]:
    """The optimized value (the best checkpoint's score) first, then every train/, val/ and test/ metric
    of results.json in the order the first finished job lists them; one no finished job reports is left
    out."""
    finished = [job for job in jobs if job.status == OK]
    names = dict.fromkeys(
        name for job in finished for name in job.results.get("metrics") or {} if name.startswith(STAGES)
    )
    found = []
    if optimized_metric is not None:
        values = [job.value for job in finished if job.optimized.get("metric") == optimized_metric]
        found.append(FoldStatistic(f"{optimized_metric} (optimized)", [v for v in values if v is not None]))
    found += [
        FoldStatistic(name, [value for job in finished if (value := job.metric(name)) is not None])
        for name in names
    ]
    return [statistic for statistic in found if statistic.values]


def folds_csv(summary: SweepSummary, groups: list[FoldGroup]) -> str:
    """summary_folds.csv: one row per group and metric, every digit, with the jobs it comes from."""
    others = [key for key in summary.swept if key != FOLD_KEY]
    header = [*others, "metric", "mean", "std", "folds", "jobs"]
    rows = [
        [
            *[group.parameters.get(key, "") for key in others],
            statistic.metric,
            statistic.mean,
            "" if statistic.std is None else statistic.std,
            len(statistic.values),
            " ".join(str(job.number) for job in group.jobs),
        ]
        for group in groups
        for statistic in group.statistics
    ]
    return csv_text(header, rows)


def folds_table(summary: SweepSummary, groups: list[FoldGroup]) -> tuple[list[str], list[list[str]]]:
    """The table for people: headers, and one row of text per group and metric (4 digits)."""
    others = [key for key in summary.swept if key != FOLD_KEY]
    headers = [*others, "metric", "mean", "std", "folds"]
    rows = [
        [
            *[short_value(group.parameters[key]) if key in group.parameters else "-" for key in others],
            statistic.metric,
            format_number(statistic.mean),
            format_number(statistic.std),
            group.folds_text(statistic),
        ]
        for group in groups
        for statistic in group.statistics
    ]
    return headers, rows


def folds_title(groups: list[FoldGroup]) -> str:
    count = "1 group" if len(groups) == 1 else f"{len(groups)} groups"
    return (
        f"Across folds ({count} of jobs that differ only in {FOLD_KEY}): each metric's mean and sample "
        "standard deviation"
    )


def folds_markdown(summary: SweepSummary, groups: list[FoldGroup]) -> list[str]:
    """The `## Folds` section of summary.md."""
    headers, rows = folds_table(summary, groups)
    rule = ["---:" if header in NUMBER_COLUMNS else "---" for header in headers]
    table = [markdown_row(headers), markdown_row(rule), *map(markdown_row, rows)]
    return ["## Folds", "", folds_title(groups) + ".", "", *table]
