"""The best checkpoint by the monitored metric, whose record carries over into a resumed run's directory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

from .last_checkpoint import saved_in_another_directory


class BestCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint that keeps the best so far when a run continues from a checkpoint
    of another run directory (ckpt_path=...).

    Lightning restores only the path of the best checkpoint there, not its score: the first
    validation after the resume always became the new best, so an earlier, better epoch was neither
    tested nor reported to a sweeper. Here the earlier run's kept checkpoints are linked (or copied)
    into this run's directory and their scores restored; the earlier run's own files are never changed (this
    run deletes only its copies when better epochs replace them). When the earlier best file is
    gone, the resumed run starts its record afresh, as Lightning does.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if saved_in_another_directory(self, state_dict):
            state_dict = self._copied_into_this_run(state_dict)
        super().load_state_dict(state_dict)

    def _copied_into_this_run(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        best = state_dict.get("best_model_path")
        if not best or not Path(best).is_file():
            return state_dict
        copies = {}
        for path in {best, *state_dict.get("best_k_models", {})}:
            if Path(path).is_file():
                copies[path] = str(_copy_into(Path(path), Path(self.dirpath)))
        return {
            **state_dict,
            "dirpath": self.dirpath,
            "best_model_path": copies[best],
            "best_k_models": {copies[p]: s for p, s in state_dict["best_k_models"].items() if p in copies},
            "kth_best_model_path": copies.get(state_dict.get("kth_best_model_path"), ""),
            "last_model_path": "",
        }


def _copy_into(path: Path, directory: Path) -> Path:
    """Put `path` into `directory` under its own name, whole or not at all: a hard link where the
    file system allows (no space, no time; removing it leaves the original), else a copy. Every DDP
    process may do it at once: each makes its own temporary name first."""
    target = directory / path.name
    if not target.exists():
        directory.mkdir(parents=True, exist_ok=True)
        partial = directory / f".{path.name}.{os.getpid()}.partial"
        try:
            os.link(path, partial)
        except OSError:
            shutil.copyfile(path, partial)
        os.replace(partial, target)
    return target
