"""Fixes from Hydra releases newer than the hydra-core this project pins (1.3), applied by the
entry scripts before Hydra composes. Imports nothing heavy (no torch)."""

from __future__ import annotations

import hydra
from hydra._internal.sources_registry import SourcesRegistry
from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.config_source import ConfigSource

# The first release (major, minor) with every fix below; older releases get the backports.
FIXED_IN = (1, 4)


def hydra_version() -> tuple[int, int]:
    major, minor = hydra.__version__.split(".")[:2]
    return int(major), int(minor)


def _live_config_store(source: ConfigSource) -> ConfigStore:
    return ConfigStore.instance()


def _ignore_config_store(source: ConfigSource, store: ConfigStore) -> None:
    """Hydra 1.3's StructuredConfigSource.__init__ assigns the store; the source looks it up instead."""


def use_live_config_store() -> None:
    """Backport of facebookresearch/hydra#2928 (hydra-core 1.4): a structured config source looks
    up the ConfigStore singleton when it reads a config instead of keeping a reference to it.

    Hydra 1.3 deep-copies its config repository, that reference included, each time it lists the
    options of a config group. `--help` and shell completion list every group, so they copied the
    whole ConfigStore (the schemas of Hydra and of every plugin) over a hundred times: half the
    time `python train.py --help` took. What Hydra reads and prints stays the same.
    """
    if hydra_version() >= FIXED_IN:
        return
    # Hydra's plugin scan executes its core plugin modules again, which defines the source class
    # anew: patch the class the scan registered, once it has run (Hydra would run it next anyway).
    Plugins.instance()
    source_class = SourcesRegistry.instance().resolve("structured")
    source_class.store = property(_live_config_store, _ignore_config_store)


def apply_hydra_backports() -> None:
    """Apply every backport this module holds; calling it again changes nothing."""
    use_live_config_store()
