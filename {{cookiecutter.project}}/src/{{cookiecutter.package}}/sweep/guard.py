"""A sweep directory belongs to one sweep. Before Hydra writes anything, a directory that holds anything
else (another sweep, a run, other files) is refused; the same sweep continues there with resume=auto.

"The same sweep" is what its multirun.yaml records: the command's overrides and the basic sweeper's
params (resume=... left out), the job folders' naming (hydra.sweep.subdir) and the config the jobs were
composed from (so an edited config file makes another sweep). The launcher may differ: a sweep killed
on a cluster may be finished on a workstation. Continuing it (run/sweep_job.py), a job that finished is
not run again, one that was stopped continues from its last.ckpt, one not started starts, and the
summary at the end lists them all. Every job needs a folder of its own (hydra.sweep.subdir)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from ..errors import ConfigurationError
from ..run.command import exit_with_message
from ..run.directory import RESULTS_FILE
from ..run.resume_search import what_it_trains
from .jobs import SWEEP_FILE, find_job_dirs, split_override

BASIC_SWEEPER = "BasicSweeper"


class SweepGuard(Callback):
    """Refuse a sweep directory that holds anything but this sweep; continue this sweep with resume=auto."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            guard_sweep_dir(config)
        except ConfigurationError as error:
            exit_with_message(error)


def guard_sweep_dir(config: DictConfig) -> None:
    """Check hydra.sweep.dir and hydra.sweep.subdir; with resume=auto, point the sweep at the sweep it
    continues, and drop resume=auto from the jobs' overrides: a continued job keeps its record."""
    check_job_folders(config)
    resume = config.get("resume")
    if resume not in (None, "auto"):
        raise ConfigurationError(f"resume={resume!r}: use resume=auto to continue a sweep.")
    sweeper = str(OmegaConf.select(config, "hydra.sweeper._target_", default=""))
    sweep_dir = Path(str(config.hydra.sweep.dir))
    if resume == "auto":
        if not sweeper.endswith(BASIC_SWEEPER):
            raise ConfigurationError(
                "resume=auto continues sweeps of Hydra's basic sweeper; an Optuna search continues its "
                "study from hydra.sweeper.storage (e.g. hydra.sweeper.storage=sqlite:///optuna.db "
                "hydra.sweeper.study_name=<name>) in a new sweep directory. Leave out resume=auto."
            )
        if not sweep_dir_was_given(config):
            sweep_dir = find_sweep_to_continue(sweep_dir.parent, config) or sweep_dir
    check_sweep_dir(sweep_dir, config, continuing=resume == "auto", basic=sweeper.endswith(BASIC_SWEEPER))
    if sweeper.endswith(BASIC_SWEEPER):
        check_sweep_values_compose(config)
    if resume == "auto":
        continue_sweep(config, sweep_dir)


def check_job_folders(config: DictConfig) -> None:
    """Refuse a hydra.sweep.subdir that would put several jobs into one folder, or outside the sweep."""
    subdir = str(OmegaConf.to_container(config.hydra.sweep, resolve=False).get("subdir"))
    if not any("${hydra.job." + key + "}" in subdir for key in ("num", "id", "override_dirname")):
        raise ConfigurationError(
            f"hydra.sweep.subdir={subdir} is the same for every job, which would share one folder; "
            "include the job number, e.g. hydra.sweep.subdir=job_${hydra.job.num}."
        )
    if Path(subdir).is_absolute() or ".." in Path(subdir).parts:
        raise ConfigurationError(
            f"hydra.sweep.subdir={subdir} leads out of the sweep directory; use a name inside it, "
            "e.g. hydra.sweep.subdir=job_${hydra.job.num}."
        )


def check_sweep_values_compose(config: DictConfig) -> None:
    """Compose the config with each value of each swept key (the other overrides as given), so that an
    option or key that does not exist is refused before the sweep directory is made (Hydra's sweeper
    would stop there too, but after making it). A value its job refuses fails only that job."""
    from hydra import compose
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    lines = identity(config)["overrides"]
    try:
        overrides = OverridesParser.create().parse_overrides(lines)
    except HydraException:  # e.g. glob(), which Hydra's sweeper checks with its config loader
        return
    fixed = [
        line for line, override in zip(lines, overrides, strict=True) if not override.is_sweep_override()
    ]
    for override in filter(lambda override: override.is_sweep_override(), overrides):
        if not override.is_discrete_sweep():
            continue  # the basic sweeper refuses ranges of reals itself
        values = list(override.sweep_string_iterator())
        if not values:
            raise ConfigurationError(
                f"{override.input_line} gives no value, so the sweep would have no jobs; give it at least "
                f"one (e.g. {override.get_key_element()}=a,b)."
            )
        for value in values:
            line = f"{override.get_key_element()}={value}"
            try:
                compose(config_name=config.hydra.job.config_name, overrides=[*fixed, line])
            except (HydraException, OmegaConfBaseException) as error:
                reason = " ".join(str(error).split(" Config search path")[0].split())
                raise ConfigurationError(f"The sweep's {line} cannot be composed: {reason}") from None


def sweep_dir_was_given(config: DictConfig) -> bool:
    return any(split_override(str(line))[0] == "hydra.sweep.dir" for line in config.hydra.overrides.hydra)


def identity(config: DictConfig) -> dict[str, Any]:
    """What makes a sweep the same sweep (see the module's docstring); multirun.yaml has the same shape."""
    hydra = config.hydra
    return {
        "overrides": [line for line in map(str, hydra.overrides.task) if split_override(line)[0] != "resume"],
        "params": OmegaConf.to_container(hydra.sweeper.params) if hydra.sweeper.get("params") else None,
        "subdir": OmegaConf.to_container(hydra.sweep, resolve=False).get("subdir"),
        "config": what_it_trains(config),
    }


def first_difference(saved: Any, wanted: Any, key: str = "") -> str:
    """The dotted key where two identities first differ."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        for name in dict.fromkeys([*saved, *wanted]):
            if saved.get(name) != wanted.get(name):
                return first_difference(saved.get(name), wanted.get(name), f"{key}.{name}".lstrip("."))
    return key


def expected_jobs(config: DictConfig) -> int | None:
    """How many jobs the basic sweeper makes of this command (None when that cannot be told here)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    params = config.hydra.sweeper.get("params") or {}
    lines = [f"{key}={value}" for key, value in params.items()] + identity(config)["overrides"]
    try:
        overrides = OverridesParser.create().parse_overrides(lines)
        return len(BasicSweeper.split_arguments(overrides, None)[0])
    except HydraException:  # e.g. glob(), which needs the config loader
        return None


def finished_jobs(sweep_dir: Path) -> int:
    return sum((job / RESULTS_FILE).is_file() for job in find_job_dirs(sweep_dir).values())


def find_sweep_to_continue(sweeps_dir: Path, config: DictConfig) -> Path | None:
    """The newest sweep in `sweeps_dir` made by this sweep's command that has jobs left to run."""
    wanted, total = identity(config), expected_jobs(config)
    saved_files = sweeps_dir.glob(f"*/{SWEEP_FILE}") if sweeps_dir.is_dir() else []
    for saved in sorted(saved_files, key=lambda path: path.stat().st_mtime, reverse=True):
        if identity(OmegaConf.load(saved)) == wanted and finished_jobs(saved.parent) != total:
            return saved.parent
    return None


def check_sweep_dir(sweep_dir: Path, config: DictConfig, *, continuing: bool, basic: bool) -> None:
    """Refuse a sweep directory that is a file, or holds anything but this sweep (with resume=auto)."""
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise ConfigurationError(f"hydra.sweep.dir={sweep_dir} is a file; choose a new hydra.sweep.dir.")
    if not sweep_dir.is_dir() or not any(sweep_dir.iterdir()):
        return
    fix = "choose a new hydra.sweep.dir (or leave it at its default, a new directory per sweep)"
    saved = sweep_dir / SWEEP_FILE
    if not saved.is_file():
        names = ", ".join(sorted(path.name for path in sweep_dir.iterdir())[:5])
        raise ConfigurationError(
            f"hydra.sweep.dir={sweep_dir} is not empty ({names}) and holds no sweep; a sweep writes its "
            f"jobs and summary there: {fix}."
        )
    difference = first_difference(identity(OmegaConf.load(saved)), identity(config))
    if difference:
        what = "command-line overrides" if difference == "overrides" else difference
        raise ConfigurationError(
            f"hydra.sweep.dir={sweep_dir} holds another sweep (its {what} differ from this one's), which "
            f"this sweep would overwrite: {fix}."
        )
    if not basic:
        raise ConfigurationError(f"hydra.sweep.dir={sweep_dir} holds this search's earlier jobs: {fix}.")
    if not continuing:
        total = expected_jobs(config)
        raise ConfigurationError(
            f"hydra.sweep.dir={sweep_dir} holds this sweep already ({finished_jobs(sweep_dir)} of "
            f"{total if total is not None else '?'} jobs finished): continue it with resume=auto "
            f"(its finished jobs are kept), or {fix}."
        )


def continue_sweep(config: DictConfig, sweep_dir: Path) -> None:
    """Point the sweep at `sweep_dir` and keep resume=auto out of its jobs' overrides (each job continues
    what its folder holds: run/sweep_job.py). The jobs are composed again from hydra.overrides, so the
    directory goes there too."""
    quoted = "'" + str(sweep_dir).replace("\\", "\\\\").replace("'", "\\'") + "'"
    with read_write(config), open_dict(config):
        config.hydra.sweep.dir = str(sweep_dir)
        config.hydra.overrides.task = identity(config)["overrides"]
        config.hydra.overrides.hydra = [
            *(
                line
                for line in config.hydra.overrides.hydra
                if split_override(str(line))[0] != "hydra.sweep.dir"
            ),
            f"hydra.sweep.dir={quoted}",
        ]
    if (sweep_dir / SWEEP_FILE).is_file():
        print(f"resume=auto: continuing the sweep in {sweep_dir} ({finished_jobs(sweep_dir)} jobs finished)")
    else:
        print(f"resume=auto: no unfinished sweep of this command; starting a new sweep in {sweep_dir}")
