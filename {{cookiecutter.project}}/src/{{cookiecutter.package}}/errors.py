"""What counts as bad user input: the one error type, and the library errors that mean the same."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hydra.errors import InstantiationException
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue

from .hydra_compat import instantiate


class ConfigurationError(ValueError):
    """A value the user chose cannot work; the message names it and says how to fix it."""


class RunInterrupted(ConfigurationError):
    """The run was told to stop (Ctrl-C, SIGTERM); the message says what was kept and how to go on."""


def check_unknown_keys(group: str, given: Iterable[str], known: Iterable[str]) -> None:
    """Refuse option keys of config group `group` that are not among `known` (what its code takes)."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigurationError(
            f"Unknown {group} option(s) {', '.join(f'{group}.{key}' for key in unknown)}; "
            f"known: {', '.join(sorted(known))}."
        )


def missing_value_error(error: MissingMandatoryValue) -> ConfigurationError:
    key = error.full_key or "a required value"
    return ConfigurationError(f"{key} is not set (??? in the config); add {key}=... to the command.")


def user_error(error: BaseException | None) -> BaseException | None:
    """Return the user-input error behind `error`, or None when `error` is a bug.

    Follows explicit causes (`raise ... from`), as Hydra's errors for failed instantiations carry
    them. Lightning's MisconfigurationException is its way of saying the same as ConfigurationError.
    """
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, (ConfigurationError, MisconfigurationException)):
            return error
        if isinstance(error, MissingMandatoryValue):
            return missing_value_error(error)
        seen.add(id(error))
        error = error.__cause__
    return None


def instantiate_checked(config: DictConfig, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, re-raising our ConfigurationError instead of Hydra's wrapper of it."""
    try:
        return instantiate(config, **kwargs)
    except MissingMandatoryValue as error:
        raise missing_value_error(error) from None
    except InstantiationException as error:
        if isinstance(error.__cause__, ConfigurationError):
            raise error.__cause__ from None
        raise
