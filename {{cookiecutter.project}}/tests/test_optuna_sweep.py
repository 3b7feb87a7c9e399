"""The Optuna search: Hydra's sweep grammar as Optuna distributions, bad spaces refused before any
trial, real searches whose summary matches their jobs, failed trials, resumed studies."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from {{ cookiecutter.package }}.errors import ConfigurationError
from {{ cookiecutter.package }}.search.space import (
    check_space_composes,
    read_search_space,
)
from {{ cookiecutter.package }}.search.study import (
    RESULTS_FILE,
    check_counts,
    open_study,
    report,
    summary,
    tell,
)

from conftest import FAST, PROJECT_ROOT, read_results, run_script

PARSER = OverridesParser.create()
ONE_EPOCH = [*FAST, "trainer.max_epochs=1"]


def space_of(*arguments: str, params: dict | None = None):
    return read_search_space(params, arguments, PARSER)


def sweep_dirs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "logs" / "train" / "multiruns").iterdir())


def check_sweep_summary_marks_the_best(sweep_dir: Path, best_value: float) -> None:
    """The sweep summary (summary.csv, written when the sweep ends) marks the job with this value."""
    import csv

    with open(sweep_dir / "summary.csv") as file:
        [best] = [row for row in csv.DictReader(file) if row["best"] == "true"]
    assert float(best["optimized_value"]) == best_value
    results = json.loads((Path(best["directory"]) / "results.json").read_text())
    assert results["optimized"]["value"] == best_value


def job_configs(sweep_dir: Path) -> dict[str, dict]:
    """The config of every job of a sweep that finished, by its run directory."""
    return {
        str(path.parent): OmegaConf.to_container(OmegaConf.load(path))
        for path in sorted(sweep_dir.glob("*/config.yaml"))
        if (path.parent / "results.json").exists()
    }


@pytest.mark.parametrize(
    ("value", "distribution"),
    [
        ("choice(32,64,128)", CategoricalDistribution([32, 64, 128])),
        ("adamw,sgd", CategoricalDistribution(["adamw", "sgd"])),
        ("range(1,10)", IntDistribution(1, 9)),
        ("range(1,10,step=2)", IntDistribution(1, 9, step=2)),
        ("range(0,1,step=0.1)", FloatDistribution(0.0, 0.9, step=0.1)),
        ("interval(1e-4,1e-1)", FloatDistribution(1e-4, 0.1)),
        ("tag(log,interval(1e-4,1e-1))", FloatDistribution(1e-4, 0.1, log=True)),
        ("tag(int,interval(1,10))", IntDistribution(1, 10)),
        ("tag(int,log,interval(1,64))", IntDistribution(1, 64, log=True)),
    ],
)
def test_each_sweep_of_the_grammar_becomes_its_optuna_distribution(value, distribution):
    [parameter] = space_of(f"model.drop_rate={value}").parameters.values()
    assert parameter.name == "model.drop_rate"
    assert parameter.distribution == distribution


def test_fixed_values_reach_every_trial_and_the_command_line_replaces_params():
    space = space_of(
        "data.batch_size=16",
        "optimizer.lr=tag(log,interval(1e-4,1e-2))",
        "+trainer.limit_train_batches=3",
        params={
            "optimizer.lr": "interval(1e-3,1e-1)",
            "model.drop_rate": 0.1,
            "data.batch_size": "choice(32,64)",
        },
    )
    assert space.distributions == {"optimizer.lr": FloatDistribution(1e-4, 1e-2, log=True)}
    assert space.fixed == ["model.drop_rate=0.1", "data.batch_size=16", "+trainer.limit_train_batches=3"]


def test_a_trials_overrides_read_back_as_the_values_it_was_given():
    space = space_of(
        "model.drop_rate=range(0,1,step=0.1)",
        "+extra.name=choice('a,b',plain)",
        "+extra.sizes=choice([1,2],[3])",
        "+extra.steps=tag(int,interval(1,8))",
    )
    samples = {"model.drop_rate": 0.1 + 0.2, "extra.name": "a,b", "extra.sizes": "[1,2]", "extra.steps": 5}
    overrides = PARSER.parse_overrides(space.overrides(samples))
    read_back = {override.key_or_group: override.value() for override in overrides}
    assert read_back == {"model.drop_rate": 0.3, "extra.name": "a,b", "extra.sizes": [1, 2], "extra.steps": 5}
    assert space.values(samples)["model.drop_rate"] == 0.3


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("interval(0.1,0.001)", "low end above its high end; write interval(0.001,0.1)"),
        ("interval(0.1,0.1)", "is a single value"),
        ("tag(log,interval(0,0.1))", "needs a low end above 0"),
        ("tag(int,interval(1.5,8))", "needs whole-number ends"),
        ("tag(lg,interval(1,8))", "unknown tag lg"),
        ("tag(log,choice(1,2))", "tags apply to interval() only"),
        ("shuffle(range(1,4))", "has shuffle()"),
        ("range(4,1)", "holds no value"),
        ("interval(abc,1)", "cannot read"),
    ],
)
def test_unsupported_sweeps_are_refused_naming_the_key_value_and_fix(value, message):
    with pytest.raises(ConfigurationError, match=r"hydra\.sweeper\.params") as refused:
        space_of(params={"model.drop_rate": value})
    assert message in str(refused.value)
    assert "model.drop_rate=" in str(refused.value)


def test_a_space_without_sweeps_is_refused():
    with pytest.raises(ConfigurationError, match="search space is empty"):
        space_of("optimizer.lr=0.01")


def test_a_choice_that_cannot_compose_is_refused_before_any_trial(compose_config):
    space = space_of("optimizer=choice(adamw,sgdd)", "optimizer.lr=interval(1e-4,1e-2)")
    refused = r"optimizer=choice\(adamw,sgdd\): a trial with optimizer=sgdd .*adam adamw sgd"
    with pytest.raises(ConfigurationError, match=refused):
        check_space_composes(space, compose_config)


def test_failed_jobs_and_jobs_without_a_number_are_failed_trials():
    study = optuna.create_study(direction="maximize")
    returns = [
        JobReturn(status=JobStatus.FAILED, _return_value=ConfigurationError("bad")),
        JobReturn(status=JobStatus.COMPLETED, _return_value=None),
        JobReturn(status=JobStatus.COMPLETED, _return_value=math.nan),
        JobReturn(status=JobStatus.COMPLETED, _return_value=math.inf),  # a diverged loss is no best
        JobReturn(status=JobStatus.COMPLETED, _return_value=0.75),
    ]
    for job_return in returns:
        tell(study, study.ask({"x": FloatDistribution(0, 1)}), job_return)
    assert [trial.state for trial in study.trials] == [TrialState.FAIL] * 4 + [TrialState.COMPLETE]
    assert study.best_value == 0.75


def test_a_search_in_which_no_trial_completed_fails_saying_where_to_look(tmp_path):
    study = optuna.create_study(direction="maximize", study_name="search")
    space = space_of("optimizer.lr=interval(1e-4,1e-2)")
    failed = JobReturn(status=JobStatus.FAILED, _return_value=ValueError("diverged"))
    tell(study, study.ask(space.distributions), failed)
    content = summary(study, space, "val/acc")
    assert (content["best_value"], content["complete_trials"], content["failed_trials"]) == (None, 0, 1)
    with pytest.raises(ConfigurationError, match=r"No trial of study search completed .* failure\.json"):
        report(content, tmp_path / RESULTS_FILE)


@pytest.mark.parametrize("counts", [{"n_trials": 0}, {"n_jobs": 1.5}])
def test_trial_and_job_counts_must_be_whole_numbers_from_1(counts):
    [(key, value)] = counts.items()
    with pytest.raises(ConfigurationError, match=rf"hydra\.sweeper\.{key}={value} .*hydra\.sweeper\.{key}=4"):
        check_counts(**counts)


def test_a_stored_study_is_not_resumed_in_the_other_direction(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    open_study("maximize", None, storage, "search")
    assert open_study("maximize", None, storage, "search").study_name == "search"
    with pytest.raises(ConfigurationError, match="created to maximize, but optimized_direction=minimize"):
        open_study("minimize", None, storage, "search")


def test_hydra_finds_the_sweeper_and_help_does_not_import_optuna(tmp_path):
    probe = (
        "import json, sys\n"
        "from hydra.core.plugins import Plugins\n"
        "from hydra.plugins.sweeper import Sweeper\n"
        "sweepers = [f'{c.__module__}.{c.__name__}' for c in Plugins.instance().discover(Sweeper)]\n"
        "print(json.dumps([sweepers, 'optuna' in sys.modules]))"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    sweepers, optuna_imported = json.loads(found.stdout)
    assert "hydra_plugins.{{ cookiecutter.package }}_optuna.sweeper.OptunaSweeper" in sweepers, found.stderr
    assert not optuna_imported
    helped = subprocess.run(
        [sys.executable, "-X", "importtime", str(PROJECT_ROOT / "train.py"), "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert helped.returncode == 0, helped.stderr
    assert "optuna" not in helped.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.lr=interval(1e-2,1e-4)", "write interval(0.0001,0.01)"),
        ("optimizer.lrr=tag(log,interval(1e-4,1e-2))", "Could not override 'optimizer.lrr'"),
    ],
)
def test_a_bad_search_space_stops_the_command_before_any_trial(tmp_path, override, message):
    result = run_script("train.py", "-m", "hparams_search=optuna", override, *FAST, cwd=tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: Search space, the command line: ") and message in line
    assert not list(tmp_path.rglob("results.json")) and not list(tmp_path.rglob("multirun.yaml"))


@pytest.mark.slow
def test_search_trains_three_trials_and_reports_the_best(tmp_path):
    search = ["-m", "hparams_search=optuna", "hydra.sweeper.n_trials=3"]
    result = run_script("train.py", *search, *ONE_EPOCH, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [sweep_dir] = sweep_dirs(tmp_path)
    summary = yaml.safe_load((sweep_dir / RESULTS_FILE).read_text())
    runs = {run["output_dir"]: run for run in read_results(sweep_dir)}
    assert len(runs) == 3 and (summary["complete_trials"], summary["failed_trials"]) == (3, 0)
    assert summary["direction"] == "maximize" and summary["optimized_metric"] == "val/acc"
    assert summary["best_value"] == max(run["optimized"]["value"] for run in runs.values())
    assert runs[summary["best_output_dir"]]["optimized"]["value"] == summary["best_value"]

    configs = job_configs(sweep_dir)
    best = configs[summary["best_output_dir"]]
    assert summary["best_params"] == {
        "optimizer.lr": best["optimizer"]["lr"],
        "optimizer.weight_decay": best["optimizer"]["weight_decay"],
        "model.drop_path_rate": best["model"]["drop_path_rate"],
        "data.batch_size": best["data"]["batch_size"],
    }
    for config in configs.values():  # every trial inside the space of configs/hparams_search/optuna.yaml
        assert 1e-4 <= config["optimizer"]["lr"] <= 1e-2 and config["data"]["batch_size"] in (32, 64, 128)
        assert config["model"]["backbone"] == "test_resnet"
    assert len({config["optimizer"]["lr"] for config in configs.values()}) == 3
    assert "Best trial" in result.stdout
    check_sweep_summary_marks_the_best(sweep_dir, summary["best_value"])


@pytest.mark.slow
def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path):
    # The brute-force sampler tries every batch size once, so exactly one trial gets the invalid 0.
    result = run_script(
        "train.py",
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler._target_=optuna.samplers.BruteForceSampler",
        "~hydra.sweeper.sampler.n_startup_trials",
        "data.batch_size=choice(16,0,32)",
        *ONE_EPOCH,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    [sweep_dir] = sweep_dirs(tmp_path)
    summary = yaml.safe_load((sweep_dir / RESULTS_FILE).read_text())
    assert (summary["complete_trials"], summary["failed_trials"]) == (2, 1)
    assert summary["best_params"]["data.batch_size"] in (16, 32)
    [failure] = sweep_dir.glob("*/failure.json")
    assert "data.batch_size=0" in json.loads(failure.read_text())["error"]
    assert sorted(config["data"]["batch_size"] for config in job_configs(sweep_dir).values()) == [16, 32]


@pytest.mark.slow
def test_a_study_in_sqlite_resumes_where_it_stopped(tmp_path):
    search = ["-m", "hparams_search=optuna", "hydra.sweeper.storage=sqlite:///optuna.db"]
    search += ["hydra.sweeper.study_name=digits", *ONE_EPOCH]
    first = run_script("train.py", *search, "hydra.sweeper.n_trials=2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    resumed = run_script("train.py", *search, "hydra.sweeper.n_trials=3", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr

    first_dir, resumed_dir = sweep_dirs(tmp_path)
    assert len(read_results(first_dir)) == 2 and len(read_results(resumed_dir)) == 1  # only the third trial
    assert [path.name for path in resumed_dir.glob("*/results.json")] == ["results.json"]
    summary = yaml.safe_load((resumed_dir / RESULTS_FILE).read_text())
    assert summary["study_name"] == "digits" and summary["complete_trials"] == 3
    every_run = read_results(tmp_path / "logs")
    assert summary["best_value"] == max(run["optimized"]["value"] for run in every_run)


@pytest.mark.slow
def test_search_with_ddp_sim(tmp_path):
    """Each trial trains on 2 CPU processes; both get the trial's values (needs DDP inside a multirun)."""
    tests_dir = str(PROJECT_ROOT / "tests")
    result = run_script(
        "train.py",
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=3",
        "trainer=ddp_sim",
        *ONE_EPOCH,
        "+callbacks.rank_records._target_=rank_records.RecordRankSettings",
        "+callbacks.rank_records.directory=${paths.output_dir}",
        cwd=tmp_path,
        env={"PYTHONPATH": os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))},
    )
    failures = [path.read_text() for path in tmp_path.rglob("failure.json")]
    assert result.returncode == 0, f"{result.stderr}{failures}"
    [sweep_dir] = sweep_dirs(tmp_path)
    configs = job_configs(sweep_dir)
    assert len(configs) == 3
    best_value = yaml.safe_load((sweep_dir / RESULTS_FILE).read_text())["best_value"]
    assert best_value == max(run["optimized"]["value"] for run in read_results(sweep_dir))
    check_sweep_summary_marks_the_best(sweep_dir, best_value)
    for run_dir, config in configs.items():
        for rank in (0, 1):
            record = json.loads((Path(run_dir) / f"rank_{rank}.json").read_text())
            assert record["world_size"] == 2
            assert record["optimizer"]["lr"] == config["optimizer"]["lr"]
            assert record["optimizer"]["weight_decay"] == config["optimizer"]["weight_decay"]
            assert record["drop_path_rate"] == config["model"]["drop_path_rate"]
            assert record["batch_size"] == config["data"]["batch_size"]
