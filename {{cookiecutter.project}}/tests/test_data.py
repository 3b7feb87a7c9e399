"""The bundled digits: fixed, disjoint, stratified splits, fed through the real image transform path;
the training augmentation presets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from {{ cookiecutter.package }}.data import DigitsDataModule
from {{ cookiecutter.package }}.data.samplers import EvenlyShardedSampler
from {{ cookiecutter.package }}.data.splits import stratified_split
from {{ cookiecutter.package }}.data.transforms import build_transform
from {{ cookiecutter.package }}.errors import ConfigurationError
from {{ cookiecutter.package }}.models import backbone_preprocessing

from conftest import use_backbone_preprocessing


def test_splits_are_disjoint_cover_everything_and_keep_class_shares():
    labels = np.repeat(np.arange(10), 100)
    splits = stratified_split(labels, val_fraction=0.2, test_fraction=0.1, seed=0)
    train, val, test = (set(splits[name].tolist()) for name in ("train", "val", "test"))
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(range(1000))
    assert [int((labels[splits["val"]] == c).sum()) for c in range(10)] == [20] * 10


def test_splits_depend_only_on_their_own_seed():
    labels = np.repeat(np.arange(3), 50)
    first, again = (stratified_split(labels, 0.2, 0.2, seed=7) for _ in range(2))
    other = stratified_split(labels, 0.2, 0.2, seed=8)
    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert not np.array_equal(first["test"], other["test"])


def test_fractions_that_leave_no_training_data_are_rejected():
    with pytest.raises(ConfigurationError, match="leaves no training images"):
        stratified_split(np.arange(10) % 2, val_fraction=0.5, test_fraction=0.5, seed=0)


def test_digits_batches_are_normalised_rgb_at_the_configured_size():
    datamodule = DigitsDataModule(batch_size=16, image_size=24)
    preprocessing = use_backbone_preprocessing(datamodule, "resnet10t")
    datamodule.setup("fit")
    images, labels = next(iter(datamodule.val_dataloader()))
    assert images.shape == (16, 3, 24, 24) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and set(labels.tolist()) <= set(range(10))
    # Normalised with the backbone's mean/std: the white background (0) maps to -mean/std.
    expected_background = -preprocessing["mean"][0] / preprocessing["std"][0]
    assert images[:, 0].min().item() == pytest.approx(expected_background, abs=1e-4)
    assert sum(len(datamodule.datasets[s]) for s in ("train", "val", "test")) == 1797


def test_evaluation_under_ddp_sees_every_image_exactly_once():
    dataset = list(range(269))  # an odd size: DistributedSampler would repeat one image
    shards = [
        list(EvenlyShardedSampler(dataset, num_replicas=2, rank=rank, shuffle=False)) for rank in (0, 1)
    ]
    assert sorted(shards[0] + shards[1]) == dataset
    assert [len(EvenlyShardedSampler(dataset, num_replicas=2, rank=r, shuffle=False)) for r in (0, 1)] == [
        135,
        134,
    ]


def train_transform_steps(augment: str, random_erasing: float = 0.0) -> list:
    preprocessing = backbone_preprocessing("test_resnet", {"image_size": 16})
    return list(
        build_transform(preprocessing, True, augment=augment, random_erasing=random_erasing).transforms
    )


def step_names(steps: list) -> list[str]:
    return [type(step).__name__ for step in steps]


def test_augment_none_is_a_deterministic_resize_and_crop():
    steps = train_transform_steps("none")
    assert step_names(steps) == ["Resize", "CenterCrop", "MaybeToTensor", "Normalize"]
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 20, 3), dtype=np.uint8))
    transform = build_transform(
        backbone_preprocessing("test_resnet", {"image_size": 16}), True, augment="none"
    )
    assert torch.equal(transform(image), transform(image))


def test_augment_light_crops_and_flips_without_colour_changes():
    steps = train_transform_steps("light")
    assert step_names(steps)[:2] == ["RandomResizedCropAndInterpolation", "RandomHorizontalFlip"]
    assert steps[0].scale == (0.5, 1.0)
    assert not {"ColorJitter", "RandAugment", "RandomErasing"} & set(step_names(steps))


def test_randaugment_and_trivialaugment_add_timm_rand_augment_ops():
    randaugment = next(
        step for step in train_transform_steps("randaugment") if type(step).__name__ == "RandAugment"
    )
    assert randaugment.num_layers == 2 and {op.magnitude for op in randaugment.ops} == {9}
    trivial = next(
        step for step in train_transform_steps("trivialaugment") if type(step).__name__ == "RandAugment"
    )
    assert trivial.num_layers == 1
    assert all(op.prob == 1.0 and op.magnitude_std == float("inf") for op in trivial.ops)  # uniform magnitude


def test_random_erasing_is_added_with_its_probability_and_refused_without_augmentation():
    erasing = train_transform_steps("light", random_erasing=0.25)[-1]
    assert type(erasing).__name__ == "RandomErasing" and erasing.probability == 0.25
    with pytest.raises(ConfigurationError, match="augment=none turns off every random transform"):
        train_transform_steps("none", random_erasing=0.25)
    with pytest.raises(ConfigurationError, match="use one of none, light, randaugment, trivialaugment"):
        DigitsDataModule(augment="heavy")
