"""Seeded, stratified train/val/test splits that are identical on every run and machine."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigurationError


def stratified_split(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Split sample indices so that each class keeps its share in every split.

    Returns sorted index arrays under "train", "val" and "test"; no index is in two splits.
    """
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < fraction < 1.0:
            # Validation picks the best checkpoint and the test split measures it: both must exist.
            raise ConfigurationError(f"data.{name}={fraction} must be above 0 and below 1.")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigurationError(
            f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction:g} leaves no "
            "training images; make their sum smaller than 1."
        )
    rng = np.random.default_rng(seed)
    splits: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label in np.unique(labels):
        indices = rng.permutation(np.flatnonzero(labels == label))
        n_val = round(len(indices) * val_fraction)
        n_test = round(len(indices) * test_fraction)
        splits["val"].append(indices[:n_val])
        splits["test"].append(indices[n_val : n_val + n_test])
        splits["train"].append(indices[n_val + n_test :])
    return {name: np.sort(np.concatenate(parts)) for name, parts in splits.items()}
