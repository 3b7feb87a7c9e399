"""ImageClassifier: a whole timm model fine-tuned with the loss of losses.py, with accuracy per stage."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch import LightningModule
from omegaconf import DictConfig, ListConfig, OmegaConf
from timm.data import Mixup
from timm.scheduler.scheduler import Scheduler
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from ..errors import ConfigurationError, check_unknown_keys
from ..finetune import FinetuneStrategy, backbone_modules, backbone_parameters, parameter_groups
from ..optim import build_optimization
from .losses import TrainingLoss, plain_cross_entropy
from .network import create_network
from .preprocessing import resolve_preprocessing


def _plain(value: Any) -> Any:
    """Turn Hydra/OmegaConf containers into plain dicts and lists, which checkpoints load safely."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class ImageClassifier(LightningModule):
    """Classifies images with `timm.create_model(backbone)`; the data decides the classes.

    All arguments are plain data and are saved in checkpoints, so a checkpoint loads with
    `torch.load(path, weights_only=True)` and `ImageClassifier.load_from_checkpoint(path)`.
    """

    def __init__(
        self,
        backbone: str,
        class_names: Sequence[str],
        preprocessing: Mapping[str, Any] | None = None,
        pretrained: bool = False,
        weights: str | None = None,
        drop_rate: float = 0.0,
        drop_path_rate: float | None = None,
        label_smoothing: float = 0.0,
        mixup: Mapping[str, Any] | None = None,
        loss: str = "cross_entropy",
        gamma: float = 2.0,
        class_weights: Sequence[float] | None = None,
        channels_last: bool = False,
        compile: bool = False,
        compile_mode: str | None = None,
        compile_backend: str = "inductor",
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        finetune: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        class_names = [str(name) for name in _plain(class_names)]
        if len(class_names) < 2:
            raise ConfigurationError(f"A classifier needs at least 2 classes, the data has {class_names}.")
        # Plain data (save_hyperparameters reads these locals), so checkpoints load with weights_only.
        preprocessing, mixup, optimizer, scheduler, finetune, class_weights = map(
            _plain, (preprocessing, mixup, optimizer, scheduler, finetune, class_weights)
        )
        self.finetune_strategy = FinetuneStrategy.from_settings(finetune)
        # The loggers get the whole run config instead (run.loggers.log_run_config).
        self.save_hyperparameters(logger=False)
        self.class_names = class_names
        self.model = create_network(
            backbone,
            num_classes=len(class_names),
            pretrained=pretrained,
            weights=weights,
            drop_rate=drop_rate,
            **({} if drop_path_rate is None else {"drop_path_rate": drop_path_rate}),
        )
        self.mixup = _build_mixup(mixup, label_smoothing, len(class_names))
        self.criterion = TrainingLoss.for_classes(class_names, loss, gamma, class_weights, label_smoothing)
        # A linear probe never trains the backbone: without gradients it costs no backward pass either.
        if self.finetune_strategy.unfreeze_at_epoch is None:
            for parameter in backbone_parameters(self.model):
                parameter.requires_grad_(False)
        self._optimized_for_hardware = False
        # One metric object per stage. Arguments are not validated and NaNs not looked for on every
        # step: either would make a GPU wait for the CPU.
        self.train_acc = MulticlassAccuracy(
            num_classes=len(class_names), average="micro", validate_args=False
        )
        self.val_acc = self.train_acc.clone()
        self.test_acc = self.train_acc.clone()
        # Updated with one loss per image (see _step): with nan_strategy="disable" MeanMetric ignores
        # any weights passed to it (torchmetrics 1.9), so batch means weighted by size would be wrong.
        self.train_loss = MeanMetric(nan_strategy="disable")
        self.val_loss = self.train_loss.clone()
        self.test_loss = self.train_loss.clone()

    @property
    def preprocessing(self) -> dict[str, Any] | None:
        """Input size, mean/std, interpolation and crop this model is trained and evaluated with."""
        return self.hparams.preprocessing

    @property
    def trains_from_scratch(self) -> bool:
        """Whether the network started from random weights: not pretrained, no weights file."""
        return not (self.hparams.pretrained or self.hparams.weights)

    def resolve_preprocessing(
        self,
        overrides: Mapping[str, Any] | None = None,
        typical_image_side: Callable[[], float | None] = lambda: None,
    ) -> dict[str, Any]:
        """Decide this model's preprocessing from its timm network and the data.* `overrides` (see
        models.preprocessing), keep it for the checkpoints and return it for the data to follow."""
        self.hparams.preprocessing = resolve_preprocessing(
            self.model,
            overrides,
            from_scratch=self.trains_from_scratch,
            typical_image_side=typical_image_side,
        )
        return dict(self.hparams.preprocessing)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.model(images)

    def _step(
        self, batch: tuple[torch.Tensor, torch.Tensor], stage: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        images, targets = batch
        loss_targets = targets
        if stage == "train" and self.mixup is not None:
            # Mixed images against mixed (and smoothed) soft targets; train accuracy is against
            # each image's own original label.
            images, loss_targets = self.mixup(images, targets)
        logits = self(images)
        # Validation and test: plain cross-entropy, so that runs with any training loss compare.
        losses = (self.criterion if stage == "train" else plain_cross_entropy)(logits, loss_targets)
        # One value per image, so the epoch's loss is the mean over images, whatever the batch size
        # and however the images are split across processes.
        getattr(self, f"{stage}_loss").update(losses.detach())
        getattr(self, f"{stage}_acc").update(logits.detach(), targets)
        return losses.mean(), logits.detach()

    @staticmethod
    def monitorable_metrics() -> list[str]:
        """The metrics a callback or schedule can monitor: what _log_epoch logs during fitting."""
        return [f"{stage}/{name}" for stage in ("train", "val") for name in ("acc", "loss")]

    def _log_epoch(self, stage: str) -> None:
        # Logged once per epoch rather than handed to self.log on every step, which costs Lightning
        # about 0.3 ms per call and step. compute() is exact across DDP processes.
        for name in ("loss", "acc"):
            metric = getattr(self, f"{stage}_{name}")
            if metric.update_count:
                self.log(f"{stage}/{name}", metric.compute(), prog_bar=True, sync_dist=True)
            metric.reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        # The logits go to the logging callbacks (confusion matrix, samples): no second forward pass.
        return {"logits": self._step(batch, "val")[1], "targets": batch[1]}

    def test_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return {"logits": self._step(batch, "test")[1], "targets": batch[1]}

    # ---- fine-tuning strategy: which weights train in this epoch --------------------------------

    @property
    def backbone_frozen(self) -> bool:
        """Whether only the classifier trains in the current epoch."""
        return self.finetune_strategy.frozen_at(self.current_epoch)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.backbone_frozen:
            # A frozen backbone keeps its batch-norm statistics and runs without its dropout and
            # drop-path; the dropout before the classifier (drop_rate) still applies.
            for module in backbone_modules(self.model):
                module.training = False  # not eval(), which would reach the head's dropout inside `head`
        return self

    def on_train_epoch_start(self) -> None:
        self.train()
        if self.finetune_strategy.unfreeze_at_epoch is None:
            return
        # freeze_unfreeze: every backbone parameter is in the optimizer from the start (adding groups
        # mid-run would break DDP and schedulers built earlier). On one process a frozen backbone
        # simply needs no gradients; under DDP they are computed and synchronised, then dropped in
        # on_before_optimizer_step, so every process keeps the same set of trainable parameters.
        if self.trainer.world_size == 1:
            for parameter in backbone_parameters(self.model):
                parameter.requires_grad_(not self.backbone_frozen)

    def on_before_optimizer_step(self, optimizer) -> None:
        # Only under DDP does a frozen backbone have gradients (see on_train_epoch_start).
        if self.trainer.world_size > 1 and self.backbone_frozen:
            for parameter in backbone_parameters(self.model):
                parameter.grad = None

    # ---- speed switches ------------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        if self._optimized_for_hardware:
            return
        self._optimized_for_hardware = True
        if self.hparams.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if self.hparams.compile:
            # In place: parameter names (and so checkpoints) stay those of the plain model.
            self.model.compile(mode=self.hparams.compile_mode, backend=self.hparams.compile_backend)

    # ---- optimisation --------------------------------------------------------------------------

    def configure_optimizers(self):
        # One direction: the optimizer settings and the fine-tuning strategy give the parameter
        # groups, the groups the optimizer, the optimizer the schedule (optim.build_optimization).
        if self.hparams.optimizer is None:
            raise ConfigurationError("Training needs optimizer settings (the optimizer config group).")
        groups = parameter_groups(
            self.model,
            weight_decay=self.hparams.optimizer.get("weight_decay", 0.0),  # timm's default
            backbone_lr_scale=self.finetune_strategy.backbone_lr_scale,
            layer_decay=self.finetune_strategy.layer_decay,
        )
        max_epochs = max(int(self.trainer.max_epochs or 1), 1)
        return build_optimization(
            groups,
            self.hparams.optimizer,
            self.hparams.scheduler,
            num_epochs=max_epochs,
            updates_per_epoch=max(int(self.trainer.estimated_stepping_batches) // max_epochs, 1),
        )

    def lr_scheduler_step(self, scheduler, metric) -> None:
        if isinstance(scheduler, Scheduler):
            # timm schedules are functions of the update count; they also apply each group's lr_scale.
            scheduler.step_update(num_updates=self.global_step)
        else:
            super().lr_scheduler_step(scheduler, metric)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A timm schedule is a function of the update count, built from this run's config; restoring
        # the saved one would bring back the old run's length (e.g. when resuming with more epochs).
        # ReduceLROnPlateau's state (best value, epochs without improvement) is kept.
        if (self.hparams.scheduler or {}).get("sched") != "plateau":
            checkpoint["lr_schedulers"] = []

    def on_train_start(self) -> None:
        # Set the learning rate for the first step, also when resuming mid-schedule.
        for config in self.trainer.lr_scheduler_configs:
            if isinstance(config.scheduler, Scheduler):
                config.scheduler.step_update(num_updates=self.global_step)


def _build_mixup(
    settings: Mapping[str, Any] | None, label_smoothing: float, num_classes: int
) -> Mixup | None:
    """timm's Mixup/CutMix for the training batches (settings: its arguments), or None when it is off
    (no settings, prob=0, or no alpha above 0)."""
    if not settings:
        return None
    ours = ("label_smoothing", "num_classes")  # from model.label_smoothing and the data
    check_unknown_keys(
        "model.mixup", settings, [p for p in inspect.signature(Mixup).parameters if p not in ours]
    )
    mixup = Mixup(**settings, label_smoothing=label_smoothing, num_classes=num_classes)
    on = mixup.mixup_alpha > 0 or mixup.cutmix_alpha > 0 or mixup.cutmix_minmax is not None
    return mixup if mixup.mix_prob > 0 and on else None
