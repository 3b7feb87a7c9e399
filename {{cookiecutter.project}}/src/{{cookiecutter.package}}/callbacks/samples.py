"""Images with their predictions: a fixed set of validation images, and the test images the model
gets wrong with the most confidence."""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.distributed as dist
from lightning.pytorch import LightningModule, Trainer

from ..data.transforms import unnormalise
from .figures import RunFilesCallback

log = logging.getLogger(__name__)


class SamplePredictions(RunFilesCallback):
    """`val_samples.png`: the first `num_images` images of the validation set (of the first process's
    share under DDP: the same images every epoch and every run with the same data settings), with
    true and predicted label and confidence after the last validation. `test_errors.png`: the
    `num_errors` test images predicted wrong with the highest confidence, over all processes.
    """

    def __init__(self, dirpath: str, num_images: int = 16, num_errors: int = 16) -> None:
        super().__init__(dirpath)
        self.num_images = int(num_images)
        self.num_errors = int(num_errors)
        self.validation: dict[str, Any] | None = None
        self.errors: dict[str, torch.Tensor] | None = None

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if trainer.sanity_checking or batch_idx != 0 or outputs is None or not trainer.is_global_zero:
            return
        count = self.num_images
        confidence, predicted = outputs["logits"][:count].detach().float().softmax(dim=-1).max(dim=-1)
        self.validation = {
            "images": batch[0][:count].detach().cpu(),
            "targets": outputs["targets"][:count].cpu(),
            "predicted": predicted.cpu(),
            "confidence": confidence.cpu(),
            "epoch": trainer.current_epoch,
        }

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.validation is None or not self.writes_files(trainer) or self.num_images <= 0:
            return
        shown = self.validation
        self._draw(
            trainer,
            pl_module,
            shown,
            "val_samples",
            f"Validation images after epoch {shown['epoch']}\n(true / predicted, confidence)",
            "validation samples",
        )

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.errors = None

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if outputs is None or self.num_errors <= 0:
            return
        confidence, predicted = outputs["logits"].detach().float().softmax(dim=-1).max(dim=-1)
        wrong = torch.nonzero(predicted != outputs["targets"]).flatten()
        errors_in_batch = wrong.numel()
        if errors_in_batch == 0:
            return
        # Only the batch's most confident errors leave the device.
        wrong = wrong[confidence[wrong].argsort(descending=True)[: self.num_errors]]
        found = {
            "images": batch[0][wrong].detach().cpu(),
            "targets": outputs["targets"][wrong].cpu(),
            "predicted": predicted[wrong].cpu(),
            "confidence": confidence[wrong].cpu(),
            "wrong": errors_in_batch,
        }
        self.errors = found if self.errors is None else _most_confident([self.errors, found], self.num_errors)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        errors = self.errors
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            gathered: list[Any] = [None] * trainer.world_size
            dist.all_gather_object(gathered, errors)
            found = [part for part in gathered if part is not None]
            errors = _most_confident(found, self.num_errors) if found else None
        if not self.writes_files(trainer) or self.num_errors <= 0:
            return
        if errors is None:
            log.info("No test image was predicted wrong: no test_errors.png.")
            return
        self._draw(
            trainer,
            pl_module,
            errors,
            "test_errors",
            f"Most confident test errors: {len(errors['targets'])} of {errors['wrong']}\n"
            "(true / predicted, confidence)",
            "test errors",
        )

    def _draw(self, trainer, pl_module, shown: dict[str, Any], name: str, title: str, label: str) -> None:
        from .drawing import image_grid_figure

        names = self.class_names(pl_module)
        targets, predicted = shown["targets"].tolist(), shown["predicted"].tolist()
        captions = [
            f"{names[t]} / {names[p]}, {c:.2f}"
            for t, p, c in zip(targets, predicted, shown["confidence"].tolist(), strict=True)
        ]
        images = unnormalise(shown["images"], getattr(pl_module, "preprocessing", None))
        correct = [t == p for t, p in zip(targets, predicted, strict=True)]
        self.save_figure(trainer, image_grid_figure(images, captions, correct, title), name, label)


def _most_confident(parts: list[dict[str, Any]], number: int) -> dict[str, Any]:
    """The `number` most confident errors of several parts, and how many errors they hold in all."""
    keys = ("images", "targets", "predicted", "confidence")
    joined = {key: torch.cat([part[key] for part in parts]) for key in keys}
    order = joined["confidence"].argsort(descending=True, stable=True)[:number]
    return {
        **{key: value[order] for key, value in joined.items()},
        "wrong": sum(part["wrong"] for part in parts),
    }
