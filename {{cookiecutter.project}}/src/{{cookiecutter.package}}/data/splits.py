"""Seeded, stratified train/val/test splits that are identical on every run and machine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import ConfigurationError


def check_fraction(name: str, fraction: float) -> None:
    if not 0.0 < fraction < 1.0:
        # Validation picks the best checkpoint and the test split measures it: both must exist.
        raise ConfigurationError(f"data.{name}={fraction} must be above 0 and below 1.")


def stratified_split(
    labels: np.ndarray,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    class_names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Split sample indices so that each class keeps its share in every split.

    Returns sorted index arrays under "train", "val" and "test"; no index is in two splits.
    """
    check_fraction("val_fraction", val_fraction)
    check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ConfigurationError(
            f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction:g} leaves no "
            "training images; make their sum smaller than 1."
        )
    return split_by_class(labels, {"val": val_fraction, "test": test_fraction}, seed, class_names)


def split_by_class(
    labels: np.ndarray, fractions: Mapping[str, float], seed: int, class_names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Hold out `fractions` of each class as named splits, at least one image each; the rest is "train"."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    splits: dict[str, list[np.ndarray]] = {"train": [], **{name: [] for name in fractions}}
    for label in np.unique(labels):
        indices = rng.permutation(np.flatnonzero(labels == label))
        counts = {name: max(1, round(len(indices) * fraction)) for name, fraction in fractions.items()}
        if sum(counts.values()) >= len(indices):
            name = class_names[label] if class_names is not None else str(label)
            settings = ", ".join(
                f"data.{split}_fraction={fraction:g}" for split, fraction in fractions.items()
            )
            raise ConfigurationError(
                f"Class {name!r} has {len(indices)} image(s), too few to split with {settings}: every "
                f"split needs at least one image of each class, so a class needs at least "
                f"{len(fractions) + 1}. Add images of {name!r}, remove the class, or provide the held-out "
                "splits yourself (val/ and test/ folders, or one CSV per split)."
            )
        start = 0
        for split, count in counts.items():
            splits[split].append(indices[start : start + count])
            start += count
        splits["train"].append(indices[start:])
    return {name: np.sort(np.concatenate(parts)) for name, parts in splits.items()}
