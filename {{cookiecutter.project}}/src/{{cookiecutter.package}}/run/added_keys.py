"""Refuse `+key=value` for a key the task has no setting for (Hydra would add it, and nothing read it)."""

from __future__ import annotations

import difflib
import logging
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigurationError

log = logging.getLogger(__name__)


def top_level_keys(config: DictConfig) -> set[str]:
    """The settings the task's primary config has (configs/<task>.yaml): its keys and its groups."""
    sources = [s for s in config.hydra.runtime.config_sources if s.provider == "main" and s.schema == "file"]
    if not sources:
        return set()
    directory = Path(str(sources[0].path).removeprefix("file://"))
    return config_file_keys(directory, str(config.hydra.job.config_name)) | {"hydra"}


def config_file_keys(directory: Path, name: str) -> set[str]:
    """The keys and groups of configs/<name>.yaml and of the configs it starts from (tune.yaml: train)."""
    primary = OmegaConf.load(directory / f"{name}.yaml")
    keys = {str(key) for key in primary if key != "defaults"}
    for entry in primary.get("defaults", []):
        if isinstance(entry, DictConfig):
            for group in entry:
                keys.add(str(group).removeprefix("override ").split("/")[0])
        elif entry != "_self_":
            keys |= config_file_keys(directory, str(entry))
    return keys


def check_added_keys(config: DictConfig) -> None:
    """Refuse `+key=value` (or `++key=value`) for a key the task has no setting for: Hydra would add
    it as a new, unused setting, and the run would silently go on without what the user meant."""
    try:
        known = top_level_keys(config)
        # As typed: a value may interpolate what exists only once the job runs (${paths.output_dir}).
        typed = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
        overrides = OverridesParser.create().parse_overrides(typed)
    except Exception as error:  # Hydra swallows a callback's error and skips the guards after it
        log.warning("Could not check the command line's added keys (%s); going on.", error)
        return
    if not known:
        return
    for override in overrides:
        name = override.key_or_group.split(".")[0].split("/")[0]
        if (override.is_add() or override.is_force_add()) and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "."
            raise ConfigurationError(
                f"{override.input_line}: {config.hydra.job.config_name}.yaml has no setting {name!r}, so it "
                f"would be added and never used{hint} (--help lists the config groups, --cfg job every key.)"
            )
