"""The summary of a sweep: every job of a real `train.py -m` in one table with the best marked, as
summary.csv, summary.md, a plot and in the terminal; and the command that rebuilds it:
`python -m {{ cookiecutter.package }}.sweep <sweep dir>`."""

from __future__ import annotations

import csv
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib.colors import to_rgb
from PIL import Image

from {{ cookiecutter.package }}.sweep import SweepSummary, summarize_sweep
from {{ cookiecutter.package }}.sweep.__main__ import main
from {{ cookiecutter.package }}.sweep.plot import sweep_figure
from {{ cookiecutter.package }}.sweep.table import format_number

from conftest import FAST, run_script

REFUSED = "optimizer.lr=-1 must be at least 0"
SUMMARY_COMMAND = [sys.executable, "-m", "{{ cookiecutter.package }}.sweep"]


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """A real sweep of four jobs: adamw and sgd, each with a good learning rate (jobs 0 and 2) and one
    the run's checks refuse (jobs 1 and 3, which leave failure.json); its directory and the command."""
    cwd = tmp_path_factory.mktemp("sweep")
    result = run_script(
        "train.py",
        "-m",
        "optimizer=adamw,sgd",
        "optimizer.lr=1e-3,-1",
        *FAST,
        "trainer.max_epochs=1",
        cwd=cwd,
    )
    assert result.returncode != 0  # Hydra's basic launcher reports the failed jobs once the sweep is over
    [sweep] = (cwd / "logs" / "train" / "multiruns").iterdir()
    assert sorted(path.name for path in sweep.iterdir() if path.is_dir()) == ["0", "1", "2", "3"]
    return sweep, result


@pytest.fixture(scope="module")
def sweep_dir(sweep_run: tuple[Path, subprocess.CompletedProcess]) -> Path:
    return sweep_run[0]


def test_the_sweep_itself_ends_with_its_summary_although_jobs_failed(sweep_run):
    # Hydra skips on_multirun_end when a job failed; the summary comes from the exit of the process.
    sweep, result = sweep_run
    assert "Best: job " in result.stdout and "Failed: jobs 1, 3: " + REFUSED in result.stdout
    with open(sweep / "summary.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["status"] for row in rows] == ["ok", "failed", "ok", "failed"]
    assert (sweep / "summary.md").is_file() and (sweep / "summary_val_acc.png").is_file()


@pytest.fixture(scope="module")
def summary(sweep_dir: Path) -> SweepSummary:
    return summarize_sweep(sweep_dir, show=False)


@pytest.fixture
def sweep_copy(sweep_dir: Path, tmp_path: Path) -> Path:
    """A copy of the real sweep that a test may change (kill a job, renumber one)."""
    copy = Path(shutil.copytree(sweep_dir, tmp_path / sweep_dir.name))
    for old_summary in copy.glob("summary*"):
        old_summary.unlink()
    return copy


def csv_rows(sweep: Path) -> list[dict[str, str]]:
    with open(sweep / "summary.csv", newline="") as file:
        return list(csv.DictReader(file))


def job_results(sweep: Path) -> dict[int, dict]:
    """Each job's results.json by job number, for the jobs that have one."""
    return {int(path.parent.name): json.loads(path.read_text()) for path in sweep.glob("*/results.json")}


def best_of(results: dict[int, dict]) -> tuple[int, float]:
    """The job with the best optimized value, and that value, by the direction the jobs recorded."""
    [direction] = {job["optimized"]["direction"] for job in results.values()}
    choose = min if direction == "minimize" else max
    number = choose(results, key=lambda job: results[job]["optimized"]["value"])
    return number, results[number]["optimized"]["value"]


def test_csv_has_a_row_per_job_with_the_values_of_its_results(summary, sweep_dir):
    rows = csv_rows(sweep_dir)
    assert [row["job"] for row in rows] == ["0", "1", "2", "3"]
    assert [row["status"] for row in rows] == ["ok", "failed", "ok", "failed"]
    # The swept keys are columns; what every job shares is not.
    assert [(row["optimizer"], row["optimizer.lr"]) for row in rows] == [
        ("adamw", "0.001"),
        ("adamw", "-1"),
        ("sgd", "0.001"),
        ("sgd", "-1"),
    ]
    assert "model.backbone" not in rows[0] and "trainer.max_epochs" not in rows[0]
    for number, results in job_results(sweep_dir).items():
        row = rows[number]
        assert float(row["optimized_value"]) == results["optimized"]["value"]
        assert row["optimized_metric"] == results["optimized"]["metric"]
        for metric in ("test/acc", "val/acc", "val/loss"):
            assert float(row[metric]) == results["metrics"][metric]
        assert int(row["world_size"]) == results["world_size"] == 1
        assert int(row["cpu_threads"]) == results["cpu_threads"] >= 1
        assert float(row["wall_time_s"]) == results["wall_time_s"]
        assert int(row["epochs"]) == results["epochs"] == 1
        assert Path(row["directory"]) == Path(results["output_dir"])
    for row in rows:  # the overrides, ready to paste after `python train.py`
        recorded = yaml.safe_load((sweep_dir / row["job"] / ".hydra" / "overrides.yaml").read_text())
        assert shlex.split(row["overrides"]) == recorded


def test_failed_jobs_are_listed_as_failed_with_their_error(summary, sweep_dir):
    assert [job.number for job in summary.failed] == [1, 3]
    assert all(REFUSED in job.error and "\n" not in job.error for job in summary.failed)
    for row in csv_rows(sweep_dir)[1::2]:
        assert row["status"] == "failed" and REFUSED in row["error"]
        assert row["optimized_value"] == row["val/acc"] == row["world_size"] == ""


def test_a_failure_that_is_a_bug_shows_its_type_and_first_line(sweep_copy):
    failure = {
        "error": "CUDA out of memory.\nTried to allocate 2 GiB",
        "type": "OutOfMemoryError",
        "user_error": False,
    }
    (sweep_copy / "1" / "failure.json").write_text(json.dumps(failure))
    summary = summarize_sweep(sweep_copy, show=False)
    assert summary.failed[0].error == "OutOfMemoryError: CUDA out of memory."
    assert csv_rows(sweep_copy)[1]["error"] == "OutOfMemoryError: CUDA out of memory."


def test_the_best_job_has_the_best_optimized_value_of_all_results(summary, sweep_dir):
    number, value = best_of(job_results(sweep_dir))
    [best_row] = [row for row in csv_rows(sweep_dir) if row["best"] == "true"]
    assert int(best_row["job"]) == summary.best.number == number
    assert float(best_row["optimized_value"]) == summary.best.value == value


def test_the_best_follows_the_optimized_direction(sweep_copy):
    for path in sweep_copy.glob("*/results.json"):  # as if the jobs had minimized val/loss
        results = json.loads(path.read_text())
        loss = results["metrics"]["val/loss"]
        results["optimized"] = {"metric": "val/loss", "value": loss, "direction": "minimize"}
        path.write_text(json.dumps(results))
    number, value = best_of(job_results(sweep_copy))
    summary = summarize_sweep(sweep_copy, show=False)
    assert (summary.best.number, summary.best.value) == (number, value)
    assert summary.written["plot"] == sweep_copy.absolute() / "summary_val_loss.png"


def test_markdown_and_plot_are_written_into_the_sweep_directory(summary, sweep_dir):
    assert summary.written == {
        "csv": sweep_dir / "summary.csv",
        "markdown": sweep_dir / "summary.md",
        "plot": sweep_dir / "summary_val_acc.png",
    }
    text = (sweep_dir / "summary.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 2 + 4  # header, rule, one row per job
    assert f"Best: job {summary.best.number}, val/acc = " in text
    assert f"failed: {REFUSED}" in text and "](summary_val_acc.png)" in text
    with Image.open(sweep_dir / "summary_val_acc.png") as image:
        assert image.format == "PNG"
        # Two panels (optimizer, optimizer.lr) side by side, at the plot's fixed size.
        assert 800 <= image.width <= 1200 and 300 <= image.height <= 600
        pixels = np.asarray(image.convert("RGB"), dtype=np.int64)

    def pixels_near(colour: str) -> int:
        return int((np.abs(pixels - np.array(to_rgb(colour)) * 255).sum(axis=-1) < 60).sum())

    assert pixels_near("tab:blue") > 20 and pixels_near("tab:red") > 100  # the jobs, and the best one's star


def test_terminal_shows_every_job_the_best_one_and_why_jobs_failed(sweep_copy, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    summary = summarize_sweep(sweep_copy)
    out = capsys.readouterr().out
    assert "4 jobs: 2 ok, 2 failed; ranked by val/acc (maximize)" in out
    rows = {
        words[0]: words
        for words in map(str.split, out.splitlines())
        if words[:1] in (["0"], ["1"], ["2"], ["3"])
    }
    assert [rows[job][-1] for job in "0123"] == ["ok", "failed", "ok", "failed"]
    assert [job for job, words in rows.items() if words[1] == "★"] == [str(summary.best.number)]
    assert f"Best: job {summary.best.number}, val/acc = {summary.best.value:.4g} (maximize), in " in out
    assert str(sweep_copy.absolute() / str(summary.best.number)) in out
    assert f"Failed: jobs 1, 3: {REFUSED}" in out
    assert f"Summary: summary.csv, summary.md, summary_val_acc.png in {sweep_copy.absolute()}" in out


def test_rebuild_command_summarizes_an_existing_sweep(sweep_copy):
    result = subprocess.run([*SUMMARY_COMMAND, str(sweep_copy)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert [row["status"] for row in csv_rows(sweep_copy)] == ["ok", "failed", "ok", "failed"]
    assert (sweep_copy / "summary.md").is_file() and (sweep_copy / "summary_val_acc.png").is_file()
    assert "Best: job" in result.stdout and f"Failed: jobs 1, 3: {REFUSED}" in result.stdout


def test_a_killed_job_is_unfinished_and_the_best_comes_from_the_others(sweep_copy, capsys):
    killed, _ = best_of(job_results(sweep_copy))
    (sweep_copy / str(killed) / "results.json").unlink()  # as if it had been killed before the end
    assert main([str(sweep_copy)]) == 0
    rows = csv_rows(sweep_copy)
    assert rows[killed]["status"] == "unfinished" and rows[killed]["best"] == "false"
    [survivor] = job_results(sweep_copy)
    assert [int(row["job"]) for row in rows if row["best"] == "true"] == [survivor]
    out = capsys.readouterr().out
    assert f"Unfinished (neither results.json nor failure.json: killed or still running): job {killed}" in out


def test_a_job_that_submitit_stopped_at_its_time_limit_says_so(sweep_copy, capsys):
    job = sweep_copy / "0"
    (job / "results.json").unlink()
    with open(job / "train.log", "a") as log:  # what submitit logs there before it kills the job
        log.write(
            "[2026-12-07 00:13:12,854][submitit][INFO] - Job has timed out. Ran 1 minutes out of requested "
            "1 minutes.\n[2026-12-07 00:13:13,026][submitit][INFO] - Job not requeued because: timed-out "
            "too many times.\n"
        )
    assert main([str(sweep_copy)]) == 0
    assert csv_rows(sweep_copy)[0]["status"] == "failed"
    out = capsys.readouterr().out
    assert "Failed: job 0: started, but stopped by the time limit (hydra.launcher.timeout_min)" in out
    assert "none started" not in out


def test_a_sweep_killed_in_its_first_job_still_shows_the_swept_keys(sweep_copy):
    for later in ("1", "2", "3"):  # the jobs it never started
        shutil.rmtree(sweep_copy / later)
    (sweep_copy / "0" / "results.json").unlink()
    summary = summarize_sweep(sweep_copy, show=False)
    assert summary.swept == ["optimizer", "optimizer.lr"]  # from multirun.yaml: the sweep's command line
    assert [(row["job"], row["status"], row["optimizer"]) for row in csv_rows(sweep_copy)] == [
        ("0", "unfinished", "adamw")
    ]


def test_jobs_are_ordered_by_number_past_nine(sweep_copy):
    (sweep_copy / "3").rename(sweep_copy / "10")
    summary = summarize_sweep(sweep_copy, show=False)
    assert [job.number for job in summary.jobs] == [0, 1, 2, 10]
    assert [row["job"] for row in csv_rows(sweep_copy)] == ["0", "1", "2", "10"]


def test_a_sweep_without_a_finished_job_says_so(sweep_copy):
    for path in sweep_copy.glob("*/results.json"):
        path.unlink()
    summary = summarize_sweep(sweep_copy, show=False)
    assert summary.best is None and "plot" not in summary.written
    assert not list(sweep_copy.glob("*.png"))
    assert [row["status"] for row in csv_rows(sweep_copy)] == ["unfinished", "failed", "unfinished", "failed"]
    assert "No job of the 4 finished: no best job." in (sweep_copy / "summary.md").read_text()


def test_a_bad_path_gives_one_line_naming_it(sweep_dir, tmp_path, capsys):
    missing = tmp_path / "no-such-sweep"
    result = subprocess.run([*SUMMARY_COMMAND, str(missing)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: {missing} does not exist; pass the directory of a sweep, e.g. logs/train/multiruns/<time>."
    ]
    # Other wrong folders: each message says what the folder is and what to pass instead.
    expected = {
        tmp_path: "is not the directory of a sweep",
        sweep_dir / "0": f"is one job of the sweep {sweep_dir}; pass {sweep_dir}.",
        sweep_dir.parent: f"holds 1 sweeps; pass one of them, e.g. {sweep_dir}.",
        sweep_dir / "multirun.yaml": "is a file",
    }
    for path, message in expected.items():
        assert main([str(path)]) == 1
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith(f"Error: {path} ") and message in line


def test_plot_puts_wide_numbers_on_a_log_axis_and_names_on_positions():
    figure = sweep_figure(
        {
            "optimizer.lr": ["1e-4", "1e-3", "1e-2"],
            "optimizer.weight_decay": ["0.01", "0.05", "0.05"],
            "optimizer": ["sgd", "adamw", "sgd"],
        },
        [0.5, 0.7, 0.6],
        best=1,
        best_label="best: job 1",
        metric="val/acc",
        title="val/acc",
    )
    learning_rate, weight_decay, optimizer = figure.axes
    assert learning_rate.get_xscale() == "log" and weight_decay.get_xscale() == "linear"
    # Names keep the order of the command line (the sweep's first job first).
    assert [label.get_text() for label in optimizer.get_xticklabels()] == ["sgd", "adamw"]
    jobs, best = optimizer.collections  # every job, then the best one's star on top
    assert jobs.get_offsets().tolist() == [[0, 0.5], [1, 0.7], [0, 0.6]]
    assert best.get_offsets().tolist() == [[1, 0.7]]


def test_importing_the_summary_loads_neither_torch_nor_matplotlib():
    code = (
        "import sys, {{ cookiecutter.package }}.sweep.summary; "
        "print(sorted({'torch', 'lightning', 'matplotlib'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_table_numbers_keep_four_significant_digits_so_a_column_lines_up():
    assert [format_number(v) for v in (0.948, 0.9442, 1.0, 12.5, None)] == [
        "0.9480",
        "0.9442",
        "1.000",
        "12.50",
        "-",
    ]
