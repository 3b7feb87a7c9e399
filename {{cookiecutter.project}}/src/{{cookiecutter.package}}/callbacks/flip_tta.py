"""Test-time augmentation at test: the metrics of the probabilities averaged with those of the mirrored
images (models.class_probabilities with flip, what predict.py's flip_tta gives), beside the plain ones."""

from __future__ import annotations

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from ..models.probabilities import class_probabilities


class FlipTTA(Callback):
    """Logs test/acc_flip_tta and test/loss_flip_tta (the cross-entropy of the averaged probabilities),
    one more forward pass of each test batch's mirrored images (eval.py flip_tta=true)."""

    def __init__(self) -> None:
        self.accuracy: MulticlassAccuracy | None = None
        self.loss = MeanMetric(nan_strategy="disable")

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.accuracy is None:
            classes = len(pl_module.class_names)
            self.accuracy = MulticlassAccuracy(classes, average="micro", validate_args=False)
        self.accuracy.to(pl_module.device)
        self.loss.to(pl_module.device)

    @torch.no_grad()
    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        images, targets = batch
        probabilities = class_probabilities(pl_module, images, flip=True)
        self.accuracy.update(probabilities, targets)
        picked = probabilities.gather(1, targets[:, None]).squeeze(1)
        self.loss.update(-picked.clamp_min(torch.finfo(picked.dtype).tiny).log())

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.accuracy.update_count:
            return
        # compute() is exact across processes already.
        pl_module.log("test/acc_flip_tta", self.accuracy.compute(), sync_dist=False, rank_zero_only=True)
        pl_module.log("test/loss_flip_tta", self.loss.compute(), sync_dist=False, rank_zero_only=True)
        self.accuracy.reset()
        self.loss.reset()
