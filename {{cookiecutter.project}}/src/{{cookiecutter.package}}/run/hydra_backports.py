"""Fixes from Hydra releases newer than the hydra-core this project pins (1.3), applied by the
entry scripts before Hydra composes. Imports nothing heavy (no torch)."""

from __future__ import annotations

import copy
from typing import Any

import hydra
from hydra._internal.sources_registry import SourcesRegistry
from hydra.core.plugins import Plugins
from hydra.plugins.config_source import ConfigSource

# The first release (major, minor) with every fix below; older releases get the backports.
FIXED_IN = (1, 4)


def hydra_version() -> tuple[int, int]:
    major, minor = hydra.__version__.split(".")[:2]
    return int(major), int(minor)


def _copy_sharing_the_config_store(source: ConfigSource, memo: dict[int, Any]) -> ConfigSource:
    """A deep copy of a structured config source whose `store` is the same ConfigStore singleton."""
    duplicate = object.__new__(type(source))
    memo[id(source)] = duplicate
    for name, value in vars(source).items():
        setattr(duplicate, name, value if name == "store" else copy.deepcopy(value, memo))
    return duplicate


def use_live_config_store() -> None:
    """Backport of facebookresearch/hydra#2928 (hydra-core 1.4): a copy of a structured config
    source reads the live ConfigStore singleton instead of a copy of it.

    Hydra 1.3 deep-copies its config repository, each source's reference to the ConfigStore
    included, each time it lists the options of a config group. `--help` and shell completion list
    every group, so they copied the whole ConfigStore (the schemas of Hydra and of every plugin) over
    a hundred times: half the time `python train.py --help` took. What Hydra reads and prints stays
    the same. Only deep copies change: a source pickled for a launcher's worker process (joblib,
    submitit), where this patch is not applied, still carries its store as before.
    """
    if hydra_version() >= FIXED_IN:
        return
    # Hydra's plugin scan executes its core plugin modules again, which defines the source class
    # anew: patch the class the scan registered, once it has run (Hydra would run it next anyway).
    Plugins.instance()
    SourcesRegistry.instance().resolve("structured").__deepcopy__ = _copy_sharing_the_config_store


def apply_hydra_backports() -> None:
    """Apply every backport this module holds; calling it again changes nothing."""
    use_live_config_store()
