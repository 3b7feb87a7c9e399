"""A callback for the tests: each training process writes the settings it trains with to
<directory>/rank_<global rank>.json, so a test can check what every DDP process got."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from lightning.pytorch import Callback, LightningModule, Trainer


class RecordRankSettings(Callback):
    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        record = {
            "global_rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "optimizer": dict(pl_module.hparams["optimizer"]),
            "drop_path_rate": pl_module.hparams["drop_path_rate"],
            "batch_size": trainer.datamodule.batch_size,
            # The images of each split, where the data module keeps their indices (the digits).
            "split_indices": {
                split: indices.tolist()
                for split, indices in getattr(trainer.datamodule, "split_indices", {}).items()
                if isinstance(indices, np.ndarray)
            },
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / f"rank_{trainer.global_rank}.json").write_text(json.dumps(record))
