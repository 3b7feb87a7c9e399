"""Fixes from Hydra releases newer than the hydra-core this project pins (1.3), applied by the
entry scripts before Hydra builds its parser and composes; each is a no-op on hydra-core 1.4,
which has them. Imports nothing heavy (no torch)."""

from __future__ import annotations

import argparse
import copy
import functools
import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hydra._internal.sources_registry import SourcesRegistry
from hydra.core.plugins import Plugins
from hydra.plugins.config_source import ConfigSource

from ..hydra_compat import hydra_version

# The first release (major, minor) with every fix below; older releases get the backports.
FIXED_IN = (1, 4)


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


@contextmanager
def _non_string_help_unchecked() -> Iterator[None]:
    """Python 3.14's argparse checks each help string as it is added (`_check_help`): while this
    runs, a help that is not a string is let through and every string is still checked."""
    check = getattr(argparse.ArgumentParser, "_check_help", None)
    if check is None:  # before Python 3.14: argparse checks no help string
        yield
        return
    own = "_check_help" in vars(argparse.ArgumentParser)

    def check_strings(parser: argparse.ArgumentParser, action: argparse.Action) -> None:
        if action.help is None or isinstance(action.help, str):
            check(parser, action)

    argparse.ArgumentParser._check_help = check_strings
    try:
        yield
    finally:
        if own:
            argparse.ArgumentParser._check_help = check
        else:  # the check lives on a base class: leave ArgumentParser as it was
            del argparse.ArgumentParser._check_help


def _building_without_the_help_check(
    build: Callable[[], argparse.ArgumentParser],
) -> Callable[[], argparse.ArgumentParser]:
    @functools.wraps(build)
    def get_args_parser() -> argparse.ArgumentParser:
        with _non_string_help_unchecked():
            return build()

    get_args_parser.backported = True
    return get_args_parser


def accept_lazy_completion_help() -> None:
    """Backport of Hydra's fix for Python 3.14 (facebookresearch/hydra#3121, hydra-core 1.4): Hydra
    can build its command-line parser.

    Hydra 1.3 gives `--shell-completion` a help object that builds its text only when shown.
    Python 3.14's argparse checks every help as the argument is added and refuses one that is not a
    string, so every Hydra script stopped with "badly formed help string" before reading its command
    line. Like Hydra 1.4, this lets that help through while Hydra builds its parser, and nowhere
    else; unlike it, the other help strings of that parser are still checked.
    """
    if hydra_version() >= FIXED_IN:
        return
    # hydra.main and the completion plugin (through hydra._internal.utils.get_args) call the
    # builder by its module-level name: replace it in both modules.
    for name in ("hydra._internal.utils", "hydra.main"):
        module = importlib.import_module(name)
        if not getattr(module.get_args_parser, "backported", False):
            module.get_args_parser = _building_without_the_help_check(module.get_args_parser)


def apply_hydra_backports() -> None:
    """Apply every backport this module holds; calling it again changes nothing."""
    use_live_config_store()
    accept_lazy_completion_help()
