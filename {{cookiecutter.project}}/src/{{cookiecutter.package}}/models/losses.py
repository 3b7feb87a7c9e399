"""The training loss: cross-entropy or focal loss, optionally weighted per class, against hard labels
or the soft targets of label smoothing and mixup. Validation and test use plain cross-entropy."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigurationError

LOSSES = ("cross_entropy", "focal")


def check_class_weights(class_weights: Any, class_names: Sequence[str]) -> list[float] | None:
    """Return `class_weights` as plain floats (None stays None); refuse anything but one weight of at
    least 0 per class, not all 0. ("auto" is resolved from the training split by the train task.)"""
    if class_weights is None:
        return None
    ones = ",".join(["1.0"] * len(class_names))
    example = f"model.class_weights=[{ones}] (one per class: {list(class_names)})"
    numbers = isinstance(class_weights, Sequence) and not isinstance(class_weights, str)
    if not numbers or not all(isinstance(w, Real) and not isinstance(w, bool) for w in class_weights):
        raise ConfigurationError(
            f"model.class_weights={class_weights!r} is not a list of numbers; use null, auto or "
            f"e.g. {example}."
        )
    if len(class_weights) != len(class_names):
        raise ConfigurationError(
            f"model.class_weights has {len(class_weights)} weights, the data has {len(class_names)} classes; "
            f"give one per class, e.g. {example}, or use model.class_weights=auto."
        )
    if any(w < 0 for w in class_weights) or not any(w > 0 for w in class_weights):
        raise ConfigurationError(
            f"model.class_weights={list(class_weights)} must be at least 0 and not all 0; e.g. {example}."
        )
    return [float(w) for w in class_weights]


class TrainingLoss(nn.Module):
    """One loss per image: (focal) cross-entropy, each class's term scaled by its weight.

    `targets` are class indices, or class probabilities (mixup, label smoothing). With `gamma` > 0 the
    focal loss of Lin et al. (2017), sum_c -w_c y_c (1 - p_c)^gamma log p_c, which is cross-entropy at
    gamma = 0. Weights are a buffer, so they move with the model to its device.
    """

    def __init__(
        self,
        loss: str = "cross_entropy",
        gamma: float = 2.0,
        class_weights: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ConfigurationError(f"model.loss={loss!r} is not a loss we have; use {' or '.join(LOSSES)}.")
        if isinstance(gamma, bool) or not isinstance(gamma, Real) or gamma < 0:
            raise ConfigurationError(
                f"model.gamma={gamma!r} must be a number, at least 0; e.g. model.gamma=2.0."
            )
        self.gamma = float(gamma) if loss == "focal" else 0.0
        self.label_smoothing = label_smoothing
        weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)

    @classmethod
    def for_classes(
        cls, class_names: Sequence[str], loss: str, gamma: float, class_weights: Any, label_smoothing: float
    ) -> TrainingLoss:
        """The loss of a classifier of `class_names`, its `class_weights` checked (check_class_weights)."""
        return cls(loss, gamma, check_class_weights(class_weights, class_names), label_smoothing)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.gamma == 0.0:
            # torch's own cross-entropy takes weights, smoothing and soft targets (and is fused).
            return F.cross_entropy(
                logits,
                targets,
                weight=self.class_weights,
                label_smoothing=0.0 if targets.is_floating_point() else self.label_smoothing,
                reduction="none",
            )
        if not targets.is_floating_point():
            targets = soft_targets(targets, logits.shape[-1], self.label_smoothing)
        log_probabilities = F.log_softmax(logits.float(), dim=-1)
        terms = -targets * (1 - log_probabilities.exp()).pow(self.gamma) * log_probabilities
        if self.class_weights is not None:
            terms = terms * self.class_weights
        return terms.sum(dim=-1)


def soft_targets(targets: torch.Tensor, num_classes: int, label_smoothing: float) -> torch.Tensor:
    """One-hot targets smoothed like torch's cross-entropy: 1 - s + s/K on the label, s/K elsewhere."""
    one_hot = F.one_hot(targets, num_classes).float()
    return one_hot * (1 - label_smoothing) + label_smoothing / num_classes


def plain_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The validation and test loss of every run: unweighted, unsmoothed cross-entropy per image."""
    return F.cross_entropy(logits, targets, reduction="none")
