"""What differs between hydra-core 1.3 and 1.4, in one place, so that one code base runs on both.
Imports nothing heavy (no torch): the entry scripts use it before Hydra starts."""

from __future__ import annotations

from typing import Any

import hydra
import hydra.utils
from hydra.errors import InstantiationException


def hydra_version() -> tuple[int, int]:
    """The installed hydra-core's (major, minor)."""
    major, minor = hydra.__version__.split(".")[:2]
    return int(major), int(minor)


ON_HYDRA_1_4 = hydra_version() >= (1, 4)

# The keyword arguments that give hydra.main and initialize_config_dir Hydra 1.3's defaults (no
# change of working directory, ...). 1.3 needs them (without, it falls back to 1.1's); 1.4 has those
# defaults and warns that version_base will be removed.
VERSION_BASE: dict[str, str] = {} if ON_HYDRA_1_4 else {"version_base": "1.3"}

# The only `_target_`s instantiate may call: every one this project's configs name. hydra-core 1.4
# warns at each instantiate without such a list (config-chosen targets can run any code) and 1.5
# refuses it. A target of your own goes here: a package with ".*", a single callable by its full name.
TRUSTED_TARGETS = (
    "{{ cookiecutter.package }}.*",
    "hydra_plugins.{{ cookiecutter.package }}_optuna.*",
    "lightning.pytorch.*",
    "optuna.samplers.*",
    "datetime.timedelta",
)

# hydra.main's keyword arguments: on 1.4, TRUSTED_TARGETS also covers what Hydra instantiates
# itself (the run guard in hydra.callbacks, the Optuna sampler) in the script's process.
HYDRA_MAIN: dict[str, object] = (
    {"execution_whitelist": list(TRUSTED_TARGETS)} if ON_HYDRA_1_4 else {"version_base": "1.3"}
)


# What `except` catches to get the error a `_target_` raised: 1.3 wraps it in an
# InstantiationException (its __cause__), 1.4 lets the target's own error through, noting the key.
TARGET_ERRORS: tuple[type[Exception], ...] = (Exception,) if ON_HYDRA_1_4 else (InstantiationException,)


def target_error(error: Exception) -> BaseException:
    """The error the `_target_` itself raised, from one caught as TARGET_ERRORS."""
    if isinstance(error, InstantiationException) and error.__cause__ is not None:
        return error.__cause__
    return error


def instantiate(config: Any, *args: Any, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, limited to TRUSTED_TARGETS where Hydra can do that (1.4 and later)."""
    if ON_HYDRA_1_4:
        kwargs["_execution_whitelist_"] = list(TRUSTED_TARGETS)
    return hydra.utils.instantiate(config, *args, **kwargs)
