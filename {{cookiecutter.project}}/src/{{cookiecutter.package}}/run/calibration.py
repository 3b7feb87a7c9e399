"""Temperature scaling after training (temperature_scaling=true): fit T on the validation split with the
best checkpoint's weights, fold it into that checkpoint (models/calibration.py), and record it there
with the validation ECE and loss before and after."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from lightning.pytorch import Trainer
from torch.utils.data import DataLoader

from ..atomic import replaced_atomically
from ..models import ImageClassifier
from ..models.calibration import expected_calibration_error, fit_temperature, fold_temperature

log = logging.getLogger(__name__)


@torch.no_grad()
def predicted_logits(model: ImageClassifier, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's logits and the labels of every image the loader gives, in eval mode on the CPU."""
    model.eval()
    logits, targets = [], []
    for images, labels in loader:
        logits.append(model(images.to(model.device)).float().cpu())
        targets.append(labels)
    return torch.cat(logits), torch.cat(targets)


def calibrate_checkpoint(
    trainer: Trainer, model: ImageClassifier, loader: DataLoader, path: str | Path
) -> dict[str, float]:
    """Fit T on `loader` (the validation split) with the weights of checkpoint `path`, fold it into them
    and rewrite the checkpoint (atomically, on the main process), with `calibration` beside them.

    Every process computes the same T from the same images; the others wait for the file.
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["state_dict"])
    logits, targets = predicted_logits(model, loader)
    temperature = fit_temperature(logits, targets)
    calibration = {
        "temperature": temperature,
        "val_ece_before": expected_calibration_error(logits, targets),
        "val_ece_after": expected_calibration_error(logits / temperature, targets),
        "val_loss_before": float(F.cross_entropy(logits, targets)),
        "val_loss_after": float(F.cross_entropy(logits / temperature, targets)),
    }
    fold_temperature(model.model, temperature)
    checkpoint["state_dict"] = {name: value.cpu() for name, value in model.state_dict().items()}
    checkpoint["calibration"] = calibration
    if trainer.is_global_zero:
        with replaced_atomically(Path(path)) as temporary:
            torch.save(checkpoint, temporary)
    trainer.strategy.barrier("temperature_scaling")
    model.calibration = calibration  # for the test that follows (callbacks/calibration.py)
    log.info(
        "Temperature scaling: T=%.3f fitted on the validation split, ECE %.4f -> %.4f; folded into %s.",
        temperature,
        calibration["val_ece_before"],
        calibration["val_ece_after"],
        path,
    )
    return calibration
