"""The command-line boundary: a user error ends with one line and exit status 1, never a traceback.

Every entry point ends a user error here: RunGuard for Hydra runs (a sweep's refusals too), the
Optuna sweeper for a search space, and `python -m <package>.sweep`."""

from __future__ import annotations

import logging
import re
import sys
import warnings
from typing import NoReturn

# Whole words only: "output" holds "tpu".
HARDWARE_WORDS = re.compile(r"\b(gpus?|cuda|mps|accelerators?|tpus?)\b", re.IGNORECASE)


def print_error(error: BaseException) -> None:
    """Print `error` as one line on stderr; errors about devices get a hint."""
    hint = ""
    if HARDWARE_WORDS.search(str(error)):
        hint = " Check that the trainer preset fits this machine (trainer=cpu, gpu, ddp, ddp_sim or mps)."
    print(f"Error: {error}{hint}", file=sys.stderr)


def exit_with_message(error: BaseException) -> NoReturn:
    """Print `error` as one line on stderr (print_error) and exit with status 1."""
    print_error(error)
    sys.exit(1)


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
    # Lightning cannot see that our data modules resume mid-epoch (they save their place in the
    # training order themselves: data/base.py), so it would warn that the results are unreliable.
    warnings.filterwarnings("ignore", message=r"You're resuming from a checkpoint that ended before the")
    # Said when a continued run's CSV logger starts; run.loggers.continue_csv_metrics keeps the file.
    warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
    # Under DDP: these test metrics come from the confusion matrix, top-k accuracies and calibration
    # error that every process has synced already (callbacks/confusion.py, calibration.py), so they
    # need no sync_dist.
    warnings.filterwarnings(
        "ignore", message=r"It is recommended to use `self\.log\('test/(f1_macro|acc_top\d+|ece\w*)'"
    )
