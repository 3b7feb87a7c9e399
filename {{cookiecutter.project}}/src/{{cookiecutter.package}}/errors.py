"""The error type for bad user input: the command line shows its message, not a traceback."""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue


class ConfigurationError(ValueError):
    """A value the user chose cannot work; the message names it and says how to fix it."""


def instantiate_checked(config: DictConfig, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, re-raising our ConfigurationError instead of Hydra's wrapper of it."""
    try:
        return instantiate(config, **kwargs)
    except MissingMandatoryValue as error:
        key = f"{error.full_key}" if error.full_key else "a required value"
        raise ConfigurationError(
            f"{key} is not set (??? in the config); add {key}=... to the command."
        ) from None
    except InstantiationException as error:
        if isinstance(error.__cause__, ConfigurationError):
            raise error.__cause__ from None
        raise
