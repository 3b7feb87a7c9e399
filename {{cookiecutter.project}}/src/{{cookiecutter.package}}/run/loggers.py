"""Experiment loggers from the `logger` config group; wandb never waits for a login."""

from __future__ import annotations

import csv
import importlib.util
import io
import logging
import netrc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import Logger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from omegaconf import DictConfig, OmegaConf, open_dict

from ..errors import ConfigurationError
from ..hydra_compat import instantiate

log = logging.getLogger(__name__)

# The module each logger needs, and the extra of this project that installs it.
LOGGER_REQUIREMENTS = {
    "WandbLogger": (("wandb",), "wandb"),
    "TensorBoardLogger": (("tensorboard", "tensorboardX"), "tensorboard"),
}


def wandb_has_credentials() -> bool:
    """True when wandb can log in without asking: an API key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    netrc_file = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return netrc.netrc(str(netrc_file)).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _check_installed(name: str, target: str) -> None:
    for class_name, (modules, extra) in LOGGER_REQUIREMENTS.items():
        if target.endswith(class_name) and not any(importlib.util.find_spec(m) for m in modules):
            raise ConfigurationError(
                f"logger={name} needs the {modules[0]} package: pip install -e '.[{extra}]'"
            )


def _use_wandb_offline_without_login(name: str, config: DictConfig) -> None:
    mode = os.environ.get("WANDB_MODE")
    if mode == "online" and not config.get("offline") and not wandb_has_credentials():
        raise ConfigurationError(
            "WANDB_MODE=online, but wandb has no API key (WANDB_API_KEY or `wandb login`), so it would "
            "stop to ask for one. Log in first, or unset WANDB_MODE to log offline and `wandb sync` later."
        )
    if mode or config.get("offline") or wandb_has_credentials():
        return
    with open_dict(config):
        config.offline = True
    log.warning(
        "No wandb API key found (WANDB_API_KEY or `wandb login`): logging offline to %s. "
        "Upload the run later with `wandb sync`.",
        Path(config.save_dir) / "wandb",
    )


def _group_wandb_runs_of_a_sweep(config: DictConfig) -> None:
    """In a multirun, wandb's group is the sweep and each run's name the job's overrides (unless set)."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return
    hydra = HydraConfig.get()
    with open_dict(config):
        if config.get("group") is None:
            config.group = f"{hydra.job.name}/{Path(hydra.sweep.dir).name}"
        if config.get("name") is None:
            config.name = hydra.job.override_dirname or f"job {hydra.job.num}"


def continue_csv_metrics(logger: Logger) -> None:
    """Let a CSV logger append to the metrics.csv of a run it continues (resume=auto).

    Lightning's CSV writer deletes a metrics.csv it finds when it starts, and would then write only
    the columns it logs itself: the first part of the run would be lost. Here the file is put back,
    and the writer starts with its columns, so it appends.
    """
    path = Path(logger.log_dir) / "metrics.csv"
    if not path.is_file():
        return
    earlier = path.read_text()
    writer = logger.experiment  # the file is deleted here
    if not isinstance(writer, ExperimentWriter):  # processes other than the first write nothing
        return
    path.write_text(earlier)
    writer.metrics_keys.extend(next(csv.reader(io.StringIO(earlier)), []))


def instantiate_loggers(config: DictConfig | None) -> list[Logger]:
    """Instantiate every logger of the `logger` group (entries set to null are skipped)."""
    loggers: list[Logger] = []
    for name, logger_config in (config or {}).items():
        if logger_config is None:
            continue
        target = str(logger_config.get("_target_", ""))
        _check_installed(name, target)
        if target.endswith("WandbLogger"):
            _use_wandb_offline_without_login(name, logger_config)
            _group_wandb_runs_of_a_sweep(logger_config)
        logger = instantiate(logger_config)
        if target.endswith("CSVLogger"):
            continue_csv_metrics(logger)
        loggers.append(logger)
    return loggers


def finish_loggers(loggers: list[Logger]) -> None:
    """Close what needs closing, so that the next run in this process (a sweep job) starts afresh.

    Lightning leaves the wandb run open; a later WandbLogger would otherwise log into it.
    """
    for logger in loggers:
        if logger.__class__.__name__ == "WandbLogger":
            import wandb

            if wandb.run is not None:
                wandb.finish()


def logger_directories(loggers: list[Logger]) -> dict[str, str]:
    """Where each logger writes its files, labelled "logs", or "logs (csv)" etc. for several."""
    directories = {}
    for logger in loggers:
        directory = getattr(logger, "log_dir", None) or logger.save_dir
        if directory:
            kind = type(logger).__name__.removesuffix("Logger").lower()
            directories[f"logs ({kind})"] = str(directory)
    if len(directories) == 1:
        return {"logs": next(iter(directories.values()))}
    return directories


def plain_run_config(config: DictConfig) -> dict[str, Any]:
    """The run's resolved config as plain dicts and lists (Hydra's own settings left out)."""
    return {str(k): v for k, v in OmegaConf.to_container(config, resolve=True).items() if k != "hydra"}


def log_run_config(loggers: list[Logger], config: DictConfig) -> None:
    """Give every logger the whole run config (wandb's config, hparams.yaml of csv and TensorBoard)."""
    if loggers:
        plain = plain_run_config(config)
        for logger in loggers:
            logger.log_hyperparams(plain)


def log_final_metrics(loggers: list[Logger], config: DictConfig, metrics: Mapping[str, float]) -> None:
    """The run's final metrics beside its hyperparameters: TensorBoard's HPARAMS tab (which compares
    runs) and wandb's run summary."""
    for logger in loggers:
        kind = type(logger).__name__
        if kind == "TensorBoardLogger":
            logger.log_hyperparams(plain_run_config(config), metrics=dict(metrics))
        elif kind == "WandbLogger":
            logger.experiment.summary.update(dict(metrics))
        logger.save()


def wants_model_graph(loggers: list[Logger]) -> bool:
    """Whether a TensorBoard logger is set to draw the model graph (logger.tensorboard.log_graph=true)."""
    return any(getattr(logger, "_log_graph", False) for logger in loggers)
