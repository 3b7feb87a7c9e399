"""Run a task from the command line: bad input ends with its message and exit status 1, no traceback."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable
from typing import Any

from lightning.fabric.utilities.exceptions import MisconfigurationException

from .errors import ConfigurationError

USER_ERRORS = (ConfigurationError, MisconfigurationException)


def find_user_error(error: BaseException | None) -> BaseException | None:
    """Return the user-input error behind `error`, following explicit causes (`raise ... from`),
    as Hydra's errors for failed instantiations carry them."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, USER_ERRORS):
            return error
        seen.add(id(error))
        error = error.__cause__
    return None


class DropAdvertisements(logging.Filter):
    """Lightning logs tips for its cloud products on every run; they say nothing about the run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("💡")


def send_lightning_logs_to_hydra() -> None:
    """Drop the console handler `import lightning` adds: Hydra's root handlers already show those
    messages (and also write them to the run's log file), so each would print twice."""
    if logging.getLogger().handlers:
        logging.getLogger("lightning").handlers.clear()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(DropAdvertisements())
    # Lightning 2.6 calls a torch API that newer torch releases deprecate; nothing a user can act on.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def run_task(task: Callable[[Any], Any], config: Any) -> Any:
    """Call `task(config)`; print a user error's message and exit 1 instead of showing a traceback."""
    send_lightning_logs_to_hydra()
    try:
        return task(config)
    except Exception as error:
        user_error = find_user_error(error)
        if user_error is None:
            raise
        hint = ""
        if any(word in str(user_error).lower() for word in ("gpu", "cuda", "mps", "accelerator")):
            hint = " Check that the trainer preset fits this machine (trainer=cpu, gpu, ddp, ddp_sim or mps)."
        print(f"Error: {user_error}{hint}", file=sys.stderr)
        sys.exit(1)
