"""Summarize a sweep: collect its jobs, write summary.csv, summary.md and a plot into its directory,
and print the table; a sweep over data.fold also gets each metric's mean and spread across the folds.
Imports nothing heavy (no torch; matplotlib only when drawing, rich when printing)."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Sequence
from pathlib import Path

from ..atomic import write_atomically
from ..pictures import figure_png
from .folds import (
    FOLDS_CSV_FILE,
    NUMBER_COLUMNS,
    FoldGroup,
    fold_groups,
    folds_csv,
    folds_markdown,
    folds_table,
    folds_title,
)
from .jobs import FAILED, OK, UNFINISHED, SweepSummary, collect_sweep
from .plot import plot_file_name, sweep_figure
from .table import (
    display_table,
    headline,
    markdown,
    outcome_counts,
    outcome_lines,
    shared_overrides,
    summary_csv,
)

log = logging.getLogger(__name__)

CSV_FILE = "summary.csv"
MARKDOWN_FILE = "summary.md"


def summarize_sweep(sweep_dir: Path, *, show: bool = True) -> SweepSummary:
    """Write summary.csv, summary.md and summary_<metric>.png into `sweep_dir` and, with `show`, print
    the table, the best job and the failures; for a sweep over data.fold also summary_folds.csv and the
    table of means and standard deviations. Raises ConfigurationError when `sweep_dir` is no sweep."""
    summary = collect_sweep(sweep_dir)
    summary.written["csv"] = write_atomically(summary.sweep_dir / CSV_FILE, summary_csv(summary))
    groups = fold_groups(summary)
    if groups:
        summary.written["folds"] = write_atomically(
            summary.sweep_dir / FOLDS_CSV_FILE, folds_csv(summary, groups)
        )
    if summary.ranked:
        try:
            summary.written["plot"] = write_plot(summary)
        except Exception as error:  # a picture is never worth losing the rest of the summary
            log.warning("The sweep's plot could not be drawn: %s", error)
    text = markdown(summary)
    if groups:
        text += "\n" + "\n".join(folds_markdown(summary, groups)) + "\n"
    summary.written["markdown"] = write_atomically(summary.sweep_dir / MARKDOWN_FILE, text)
    if show:
        print_summary(summary, groups)
    return summary


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


def print_summary(summary: SweepSummary, groups: Sequence[FoldGroup] = ()) -> None:
    """The table (the best job in bold), then the best job, why jobs failed, the means and standard
    deviations across folds, and the files written. Cells keep their width (headers break at their first
    space), so that numbers are never cut."""
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
    if groups:
        headers, rows = folds_table(summary, groups)
        folds = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for header in headers:
            folds.add_column(header, justify="right" if header in NUMBER_COLUMNS else "left", no_wrap=True)
        for row in rows:
            folds.add_row(*map(Text, row))
        console.print(folds_title(groups) + ":", markup=False, highlight=False, soft_wrap=True)
        console.print(folds)
    names = ", ".join(sorted(path.name for path in summary.written.values()))
    console.print(f"Summary: {names} in {summary.sweep_dir}", markup=False, highlight=False, soft_wrap=True)
