"""Values given for settings whose default is a boolean or a number must be one: a rule by type, for
every key of every task's config, judged against the defaults of the same config groups."""

from __future__ import annotations

import fnmatch
import functools
import logging
import math
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict, read_write

from ..errors import ConfigurationError

log = logging.getLogger(__name__)
# What YAML 1.1 reads as booleans (in any case) and what OmegaConf's typed booleans also take (1, 0).
TRUE_WORDS = ("true", "yes", "on", "y", "1")
FALSE_WORDS = ("false", "no", "off", "n", "0")
BOOLEAN_SPELLINGS = "true or false (also yes/no, on/off, y/n, 1/0)"
# Lightning arguments whose default is a number or a boolean but that also take words: devices
# ("auto", "0,1"), deterministic ("warn"), a ModelCheckpoint's save_last ("link").
WORDS_ALLOWED = ("trainer.devices", "trainer.deterministic", "callbacks.*.save_last")


def takes_words(key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in WORDS_ALLOWED)


def as_boolean(value: Any) -> bool | None:
    """`value` read as a boolean the way YAML and OmegaConf read one, or None when it is not one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str) and str(value).strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return str(value).strip().lower() in TRUE_WORDS
    return None


def leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value as typed) for every plain value of a config; interpolations are not resolved."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict | list):
            yield from leaves(value, name)
        else:
            yield name, value


def plain(config: DictConfig | ListConfig) -> Any:
    return OmegaConf.to_container(config, resolve=False)


def composed_defaults(hydra: DictConfig | None) -> DictConfig | None:
    """The task's config as its files compose it for the same group choices, before the command line's
    values; None outside a Hydra app (a config composed in a test) or when it cannot be composed."""
    from hydra.core.global_hydra import GlobalHydra

    if hydra is None or not GlobalHydra.instance().is_initialized():
        return None
    choices = tuple(
        f"{group}={option}"
        for group, option in hydra.runtime.choices.items()
        if option is not None and group != "hydra" and not str(group).startswith("hydra/")
    )
    return compose_once(str(hydra.job.config_name), choices)


@functools.lru_cache(maxsize=8)
def compose_once(config_name: str, choices: tuple[str, ...]) -> DictConfig | None:
    """Composing takes about 0.25 s: the run guard and the task (and a sweep's jobs) share one."""
    from hydra import compose

    try:
        return compose(config_name=config_name, overrides=list(choices))
    except Exception as error:  # a guard that cannot judge must not stop a run the user started
        log.warning("Could not compose the default config to check the given values (%s); going on.", error)
        return None


def given_keys() -> set[str]:
    """The keys the command line set (key=value, +key=value, group=option); empty outside a Hydra app."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not HydraConfig.initialized():
        return set()
    overrides = OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))
    return {override.key_or_group for override in overrides}


def check_finite_numbers(config: DictConfig, defaults: DictConfig | None = None) -> None:
    """Refuse nan and inf for any setting: no setting of this project means anything by them."""
    for key, value in leaves(plain(config)):
        if isinstance(value, float) and not math.isfinite(value):
            default = OmegaConf.select(defaults, key, default=None) if defaults is not None else None
            example = (
                f"set e.g. {key}={default}" if isinstance(default, int | float) else "give a finite number"
            )
            raise ConfigurationError(f"{key}={value} is not a finite number; {example}.")


def value_at(tree: Any, key: str) -> Any:
    """The value at dotted `key` of a plain config (a list or dict too), or ABSENT."""
    for part in key.split("."):
        if isinstance(tree, dict) and part in tree:
            tree = tree[part]
        elif isinstance(tree, list) and part.isdigit() and int(part) < len(tree):
            tree = tree[int(part)]
        else:
            return ABSENT
    return tree


ABSENT = object()


def check_given_types(config: DictConfig, defaults: DictConfig) -> None:
    """Where the default is a boolean, the value must read as one (and is stored as a real bool, so that
    `test=no` means false); where it is a number, the value must be a number (or null)."""
    given = plain(config)
    for key, default in leaves(plain(defaults)):
        value = value_at(given, key)
        interpolation = isinstance(value, str) and "${" in value  # judged by what it resolves to
        if value is ABSENT or value is None or interpolation or key.startswith("hydra.") or takes_words(key):
            continue
        if isinstance(default, bool):
            boolean = as_boolean(value)
            if boolean is None:
                raise ConfigurationError(
                    f"{key}={value!r} is not a boolean; use {BOOLEAN_SPELLINGS}, "
                    f"e.g. {key}={str(default).lower()}."
                )
            if boolean is not value:
                with read_write(config), open_dict(config):
                    OmegaConf.update(config, key, boolean, merge=False)
        elif isinstance(default, int | float) and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise ConfigurationError(f"{key}={value!r} is not a number; set e.g. {key}={default}.")


def check_given_values(config: DictConfig, hydra: DictConfig | None = None) -> None:
    """Both rules above; the types only where the defaults can be composed (inside a Hydra app)."""
    defaults = composed_defaults(hydra)
    check_finite_numbers(config, defaults)
    if defaults is not None:
        check_given_types(config, defaults)
