"""Every sweep ends with its summary: a Hydra callback, configured in configs/hydra/default.yaml."""

from __future__ import annotations

import atexit
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class SweepSummaryCallback(Callback):
    """Write and print the summary of a sweep once its jobs have run (summary.csv, summary.md, a plot).

    Hydra skips on_multirun_end when a job failed, but the process still exits through atexit: the
    summary is written then, so a sweep with failed jobs also ends with its table.
    """

    def __init__(self) -> None:
        self.sweep_dir: Path | None = None  # set when a sweep starts; cleared once summarized

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
        atexit.register(self.summarize)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.summarize()

    def summarize(self) -> None:
        sweep_dir, self.sweep_dir = self.sweep_dir, None
        if sweep_dir is None or not sweep_dir.is_dir():
            return
        try:
            from .summary import summarize_sweep

            summarize_sweep(sweep_dir)
        except Exception as error:  # the jobs' own results are safe; say how to try again
            log.error(
                "Could not summarize the sweep (%s: %s); rebuild it with: python -m %s %s",
                type(error).__name__,
                error,
                __package__,
                sweep_dir,
            )
