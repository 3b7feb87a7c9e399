"""Class weights from the training split's class counts, for a class-weighted loss."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigurationError
from .summary import class_counts


def balanced_class_weights(train_labels: np.ndarray, class_names: Sequence[str]) -> list[float]:
    """n / (K n_c) for each class c of K with n_c of the n training images (scikit-learn's "balanced"):
    every class adds the same total weight, and the weights average 1 over the training images, so the
    loss keeps its scale and the learning rate its meaning."""
    counts = class_counts(train_labels, len(class_names))
    if not counts.all():
        missing = [class_names[i] for i in np.flatnonzero(counts == 0)]
        raise ConfigurationError(
            f"model.class_weights=auto: the training split has no images of {missing}; add some, or give "
            "the weights as a list (model.class_weights=[...])."
        )
    return [float(w) for w in counts.sum() / (len(counts) * counts)]
