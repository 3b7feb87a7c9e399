"""Checkpoint files: written atomically, checked before use, loaded as classifiers by any task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..atomic import replaced_atomically
from ..errors import ConfigurationError
from ..models import ImageClassifier


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file beside it, then rename it into place.

    A run killed while saving leaves the previous checkpoint whole. (Lightning's own writer stages
    the file in the system's temporary directory, which on clusters is often another file system,
    where the final move is a copy that can be cut short.)
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        if "://" in str(path):  # remote storage: Lightning's fsspec writer
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with replaced_atomically(path) as temporary:
            torch.save(checkpoint, temporary)
        return None


def load_lazily(file: Path) -> Any:
    """torch.load without reading the tensors into memory (memory-mapped) where the format allows."""
    try:
        return torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as error:
        if "mmap can only be used" not in str(error):
            raise
        return torch.load(file, map_location="cpu", weights_only=True)  # an old or non-zip format


def read_checkpoint(key: str, path: str | Path) -> dict[str, Any]:
    """Load checkpoint `path` (named by config key `key` in messages) and check it is this project's."""
    file = Path(path).expanduser()
    if file.is_dir():  # a run directory, most often: name the checkpoints in it
        found = sorted(file.rglob("*.ckpt"), key=lambda p: (p.name != "last.ckpt", str(p)))
        inside = f"; e.g. {key}={found[0]}" if found else "; it holds no .ckpt file"
        raise ConfigurationError(f"{key}={str(path)!r} is a folder; give a checkpoint file{inside}.")
    if not file.is_file():
        raise ConfigurationError(f"{key}={str(path)!r}: no such checkpoint file.")
    try:
        checkpoint = load_lazily(file)
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        raise ConfigurationError(
            f"{key}={str(path)!r} cannot be read as a checkpoint (truncated, or not a PyTorch file: "
            f"{type(error).__name__}: {first_line}). Use another checkpoint of the run, e.g. its last.ckpt."
        ) from None
    hyperparameters = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hyperparameters, dict) or not {"backbone", "class_names"} <= set(hyperparameters):
        raise ConfigurationError(
            f"{key}={str(path)!r} is not a checkpoint of this project (no classifier settings in it). "
            "To start from a weights file or another project's checkpoint, use train.py model.weights=<file>."
        )
    return checkpoint


def epochs_trained(checkpoint: dict[str, Any]) -> int:
    """How many epochs of training a checkpoint holds (a last.ckpt is saved before its epoch counts as
    completed, so the count is of epochs processed)."""
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {})
    return int(progress.get("current", {}).get("processed", checkpoint.get("epoch", 0)))


def check_resumable(path: str | Path, model: ImageClassifier, max_epochs: int | None) -> None:
    """Refuse to resume from a checkpoint of another backbone or other classes than `model`, or one
    that has trained more epochs than trainer.max_epochs (Lightning would train nothing, silently)."""
    checkpoint = read_checkpoint("ckpt_path", path)
    done = epochs_trained(checkpoint)
    if max_epochs is not None and 0 <= max_epochs < done:
        raise ConfigurationError(
            f"ckpt_path={str(path)!r} has trained {done} epochs and trainer.max_epochs={max_epochs} is "
            f"fewer: nothing would be trained. Set trainer.max_epochs above {done} to train longer, or "
            f"evaluate it with eval.py ckpt_path={path}."
        )
    saved = checkpoint["hyper_parameters"]
    ours = model.hparams
    for name in ("backbone", "class_names"):
        if saved[name] != ours[name]:
            raise ConfigurationError(
                f"ckpt_path={str(path)!r} was trained with {name} {saved[name]!r}, this run has "
                f"{ours[name]!r}: resume with the settings it was trained with (model.backbone, data), "
                f"or start a new run from its weights with model.weights={path}."
            )


def load_classifier(path: str | Path) -> ImageClassifier:
    """Load a checkpoint of this project offline: plain-data hyperparameters, no pretrained download."""
    checkpoint = read_checkpoint("ckpt_path", path)
    model = ImageClassifier.load_from_checkpoint(
        Path(path).expanduser(),
        map_location="cpu",
        weights_only=True,
        pretrained=False,
        weights=None,
        compile=False,
    )
    # Temperature scaling is in the weights already; what was fitted is kept for the reports.
    model.calibration = checkpoint.get("calibration")
    return model
