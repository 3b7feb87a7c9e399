"""A search's study: created or resumed, told each job's value, summed up in optimization_results.yaml."""

from __future__ import annotations

import logging
import math
from numbers import Real
from pathlib import Path
from typing import Any

import optuna
import yaml
from hydra.core.utils import JobReturn, JobStatus
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, Trial, TrialState

from ..atomic import write_atomically
from ..errors import ConfigurationError
from ..run.checks import check_optimized_direction
from ..run.settings import Number
from .space import SearchSpace

log = logging.getLogger(__name__)
RESULTS_FILE = "optimization_results.yaml"
FINISHED = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)


def send_optuna_logs_to_hydra() -> None:
    """Optuna prints through a handler of its own; sent to the root logger instead, its messages get
    Hydra's format and also go into the sweep's log file."""
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()


def check_counts(**counts: int) -> None:
    """Refuse a count of the sweeper's (n_trials, n_jobs) that is not a whole number from 1."""
    for key, value in counts.items():
        problem = Number("4", whole=True, minimum=1).problem(value)
        if problem:
            setting = f"hydra.sweeper.{key}"
            raise ConfigurationError(f"{setting}={value!r} {problem}; set e.g. {setting}=4.")


def open_study(
    direction: str, sampler: BaseSampler | None, storage: str | None, study_name: str | None
) -> optuna.Study:
    """Create the study, or with a storage continue the one of that name; refuse a resumed study that
    optimises the other way."""
    check_optimized_direction(direction)
    try:
        study = optuna.create_study(
            storage=storage, sampler=sampler, study_name=study_name, direction=direction, load_if_exists=True
        )
    except Exception as error:  # each storage backend has errors of its own
        if storage is None:
            raise
        raise ConfigurationError(
            f"hydra.sweeper.storage={storage!r} cannot be opened ({error}); use e.g. "
            "hydra.sweeper.storage=sqlite:///optuna.db (a file in the current directory), or null."
        ) from error
    if study.direction.name.lower() != direction:
        raise ConfigurationError(
            f"Study {study.study_name!r} in {storage} was created to {study.direction.name.lower()}, but "
            f"optimized_direction={direction}; choose another hydra.sweeper.study_name."
        )
    return study


def finished_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def job_value(job_return: JobReturn) -> tuple[float | None, str]:
    """The number a job returned, or None and why the trial counts as failed."""
    if job_return.status == JobStatus.FAILED:
        return None, f"failed ({str(job_return._return_value).rstrip('.')})"
    value = job_return.return_value
    if isinstance(value, bool) or not isinstance(value, Real):
        return None, f"returned {value!r}, not a number (was optimized_metric logged?)"
    if not math.isfinite(value):
        return None, f"returned {value}"
    return float(value), ""


def told(study: optuna.Study, trial: Trial, value: float | None) -> bool:
    """Tell the study a trial's value (None: it failed); False when the sampler has tried every point
    of the space. Grid and brute-force samplers then call study.stop(), which outside study.optimize
    raises RuntimeError after the trial is stored (as Optuna documents for ask-and-tell)."""
    try:
        study.tell(trial, value, state=TrialState.FAIL if value is None else None)
    except RuntimeError as error:
        if "Study.stop" not in str(error):
            raise
        log.info("The sampler has tried every point of the search space; the search ends.")
        return False
    return True


def tell(study: optuna.Study, trial: Trial, job_return: JobReturn) -> bool:
    """Tell the study a job's value (a failed job, or one returning None or NaN, is a failed trial);
    False when the search space is exhausted."""
    output_dir = job_return.hydra_cfg.hydra.runtime.output_dir if job_return.hydra_cfg else None
    trial.set_user_attr("output_dir", output_dir)
    value, problem = job_value(job_return)
    if value is None:
        log.warning(
            "Trial %d (%s) %s; counted as failed, the search goes on.", trial.number, output_dir, problem
        )
    else:
        log.info("Trial %d (%s) finished with value %.6g.", trial.number, output_dir, value)
    return told(study, trial, value)


def tell_not_composed(study: optuna.Study, trial: Trial, overrides: list[str], error: Exception) -> bool:
    """A trial whose config cannot be composed fails without a job."""
    log.warning("Trial %d not started, its config does not compose (%s): %s", trial.number, overrides, error)
    return told(study, trial, None)


def summary(study: optuna.Study, space: SearchSpace, metric: str | None) -> dict[str, Any]:
    """Best trial (value, parameters as the jobs got them, run directory) and trial counts of the study,
    including trials of earlier sweeps when it was resumed."""
    trials = study.get_trials(deepcopy=False)
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    best: FrozenTrial | None = study.best_trial if complete else None
    return {
        "study_name": study.study_name,
        "optimized_metric": metric,
        "direction": study.direction.name.lower(),
        "best_value": best.value if best else None,
        "best_params": space.values(best.params) if best else None,
        "best_trial": best.number if best else None,
        "best_output_dir": best.user_attrs.get("output_dir") if best else None,
        "complete_trials": len(complete),
        "failed_trials": sum(trial.state == TrialState.FAIL for trial in trials),
    }


def write_summary(sweep_dir: Path, content: dict[str, Any]) -> Path:
    return write_atomically(Path(sweep_dir) / RESULTS_FILE, yaml.safe_dump(content, sort_keys=False))


def report(content: dict[str, Any], path: Path) -> None:
    """Log the best trial; a search in which no trial completed fails, saying where to look."""
    counts = f"{content['complete_trials']} complete, {content['failed_trials']} failed"
    if content["best_trial"] is None:
        raise ConfigurationError(
            f"No trial of study {content['study_name']} completed ({counts}); the failure.json in each "
            f"job directory of {path.parent} says why."
        )
    params = ", ".join(f"{key}={value}" for key, value in content["best_params"].items())
    log.info(
        "Best trial %d of study %s (%s): %s=%.6g with %s, in %s. Summary: %s",
        content["best_trial"],
        content["study_name"],
        counts,
        content["optimized_metric"],
        content["best_value"],
        params,
        content["best_output_dir"],
        path,
    )
