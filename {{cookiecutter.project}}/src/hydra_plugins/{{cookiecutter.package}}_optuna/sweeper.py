"""A Hydra sweeper on Optuna's ask-and-tell API: `python train.py -m hparams_search=optuna`.

Hydra imports this module at every start-up (also for --help), and only classes in the hydra_plugins
package may be sweepers: so it imports Hydra alone, and Optuna and the search code
({{ cookiecutter.package }}.search) only when a search runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler

log = logging.getLogger(__name__)


class OptunaSweeper(Sweeper):
    """Ask the study for `n_jobs` trials, launch them as one batch of jobs, tell it their values
    (a failed job is a failed trial), until the study holds `n_trials` finished trials; then write
    optimization_results.yaml in the sweep directory."""

    def __init__(
        self,
        sampler: BaseSampler | None,
        direction: str,
        n_trials: int,
        n_jobs: int = 1,
        storage: str | None = None,
        study_name: str | None = None,
        params: DictConfig | None = None,
    ) -> None:
        if isinstance(sampler, DictConfig):  # hydra-core 1.4 builds a plugin, not what it holds
            from {{ cookiecutter.package }}.hydra_compat import instantiate

            sampler = instantiate(sampler)
        self.sampler = sampler
        self.direction = direction
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.storage = storage
        self.study_name = study_name
        self.params = OmegaConf.to_container(params, resolve=True) if params is not None else {}

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list:
        from {{ cookiecutter.package }}.errors import ConfigurationError
        from {{ cookiecutter.package }}.run.command import exit_with_message

        try:
            return self.search(arguments)
        except ConfigurationError as error:
            exit_with_message(error)

    def compose(self, overrides: list[str]) -> None:
        """Compose one job's config, as the launcher will (raises what composing it raises)."""
        self.validate_batch_is_legal([overrides])

    def search(self, arguments: list[str]) -> list:
        from {{ cookiecutter.package }}.search.space import (
            check_space_composes,
            read_search_space,
        )
        from {{ cookiecutter.package }}.search.study import (
            check_counts,
            finished_trials,
            open_study,
            report,
            send_optuna_logs_to_hydra,
            summary,
            tell,
            tell_not_composed,
            write_summary,
        )

        check_counts(n_trials=self.n_trials, n_jobs=self.n_jobs)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        space = read_search_space(self.params, arguments, parser)
        check_space_composes(space, self.compose)
        send_optuna_logs_to_hydra()
        study = open_study(self.direction, self.sampler, self.storage, self.study_name)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        log.info(
            "Study %s: %d of %d trials finished; searching %s.",
            study.study_name,
            finished_trials(study),
            self.n_trials,
            ", ".join(space.parameters),
        )

        returns = []
        job_index = len(study.trials)  # a resumed study's jobs go on numbering where it stopped
        going_on = True  # until the sampler has tried every point of a discrete space
        while going_on and (remaining := self.n_trials - finished_trials(study)) > 0:
            batch = []
            for _ in range(min(self.n_jobs, remaining)):
                trial = study.ask(space.distributions)
                overrides = space.overrides(trial.params)
                try:
                    self.compose(overrides)
                except (HydraException, OmegaConfBaseException) as error:
                    going_on &= tell_not_composed(study, trial, overrides, error)
                    continue
                batch.append((trial, overrides))
            if not batch:
                continue
            results = self.launcher.launch([overrides for _, overrides in batch], initial_job_idx=job_index)
            job_index += len(batch)
            for (trial, _), job_return in zip(batch, results, strict=True):
                going_on &= tell(study, trial, job_return)
            returns.append(results)

        content = summary(study, space, self.config.get("optimized_metric"))
        report(content, write_summary(sweep_dir, content))
        return returns
