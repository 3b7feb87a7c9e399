"""Seeded, stratified train/val/test splits that are identical on every run and machine."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import ConfigurationError

log = logging.getLogger(__name__)


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


def stratified_folds(
    labels: np.ndarray, folds: int, seed: int, class_names: Sequence[str] | None = None
) -> list[np.ndarray]:
    """Cut sample indices into `folds` folds that partition them, each class spread over the folds
    (its count per fold differs by at most 1, and so does each fold's size). Fixed by `seed` alone:
    every process of a DDP run and every job of a sweep gets the same folds.

    Returns the sorted indices of each fold.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < folds:
        smallest = classes[counts.argmin()]
        name = class_names[smallest] if class_names is not None else str(smallest)
        raise ConfigurationError(
            f"data.folds={folds}: class {name!r} has {counts.min()} image(s) outside the test split, too "
            f"few for {folds} stratified folds (each fold needs an image of every class). Set data.folds "
            f"to at most {counts.min()}, or add images of {name!r}."
        )
    # Each class shuffled, the classes one after another, then dealt out in turn: fold f gets every
    # folds-th image, so each class (and the whole) is spread as evenly as it can be.
    order = np.concatenate([rng.permutation(np.flatnonzero(labels == label)) for label in classes])
    return [np.sort(order[fold::folds]) for fold in range(folds)]


def check_fold(folds: int | None, fold: int, given: bool = False) -> None:
    """Refuse a fold that is not one of the folds, and a fold without folds (`given`: data.fold was set,
    though to the default 0). Their types and lower bounds: run/settings.py."""
    if folds is None and (fold != 0 or given):
        raise ConfigurationError(
            f"data.fold={fold} is set but data.folds is null (no cross-validation); set e.g. data.folds=5 "
            "as well, or leave data.fold out."
        )
    if folds is not None and not 0 <= fold < folds:
        raise ConfigurationError(
            f"data.fold={fold} is not a fold of data.folds={folds}: they are numbered 0 to {folds - 1}; set "
            f"e.g. data.fold=0, or train on each with -m 'data.fold=range({folds})'."
        )


def cross_validation_split(
    labels: np.ndarray, folds: int, fold: int, seed: int, class_names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Fold `fold` of `stratified_folds` as "val", the other folds together as "train" (sorted indices)."""
    check_fold(folds, fold)
    parts = stratified_folds(labels, folds, seed, class_names)
    return {
        "train": np.sort(np.concatenate([part for index, part in enumerate(parts) if index != fold])),
        "val": parts[fold],
    }


def log_fold(folds: int, fold: int, sizes: Mapping[str, int]) -> None:
    log.info(
        "Cross-validation fold %d of data.folds=%d: %d training and %d validation images; the %d test "
        "images are those of the run without folds.",
        fold,
        folds,
        sizes["train"],
        sizes["val"],
        sizes["test"],
    )
