"""Image transforms (timm's create_transform) from the preprocessing the model decided, with the
training augmentation presets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from timm.data import create_transform

from ..errors import ConfigurationError

# Training augmentation presets, as arguments of timm.data.create_transform. Every preset except
# "none" starts with a random resized crop and a horizontal flip.
AUGMENT_PRESETS: dict[str, dict[str, Any]] = {
    # Resize and centre-crop only, the same every epoch.
    "none": {"no_aug": True},
    # Crop + flip: crops keep at least half the image, no colour changes. Suits fine-tuning on few images.
    "light": {"scale": (0.5, 1.0), "hflip": 0.5, "color_jitter": None},
    # timm's ImageNet recipes: RandAugment with 2 ops at magnitude 9 (noisy, std 0.5) ...
    "randaugment": {"auto_augment": "rand-m9-mstd0.5", "hflip": 0.5},
    # ... and TrivialAugment: one op per image at a magnitude drawn uniformly, always applied.
    "trivialaugment": {"auto_augment": "rand-n1-m10-mstd101-p1.0", "hflip": 0.5},
}


def train_transform_arguments(
    augment: str = "light", random_erasing: float = 0.0, train_transform: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return the create_transform arguments for training: the preset, random erasing, then overrides."""
    if augment not in AUGMENT_PRESETS:
        raise ConfigurationError(f"data.augment={augment!r}: use one of {', '.join(AUGMENT_PRESETS)}.")
    if not 0.0 <= random_erasing <= 1.0:
        raise ConfigurationError(f"data.random_erasing={random_erasing} is a probability: use 0 to 1.")
    if augment == "none" and random_erasing > 0:
        raise ConfigurationError(
            "data.augment=none turns off every random transform, random erasing included; set "
            "data.random_erasing=0 or choose data.augment=light."
        )
    arguments = {**AUGMENT_PRESETS[augment], "re_prob": random_erasing, **dict(train_transform or {})}
    for key in ("scale", "ratio"):
        if arguments.get(key) is not None:
            arguments[key] = tuple(arguments[key])
    return arguments


def build_transform(
    preprocessing: Mapping[str, Any],
    is_training: bool,
    augment: str = "light",
    random_erasing: float = 0.0,
    train_transform: Mapping[str, Any] | None = None,
):
    """Build the torchvision transform for training or evaluation with timm.data.create_transform.

    Training uses the `augment` preset (see AUGMENT_PRESETS) with random erasing of probability
    `random_erasing`; `train_transform` holds further create_transform arguments that override both.
    """
    extra = train_transform_arguments(augment, random_erasing, train_transform) if is_training else {}
    return create_transform(
        input_size=tuple(preprocessing["input_size"]),
        is_training=is_training,
        interpolation=preprocessing["interpolation"],
        mean=tuple(preprocessing["mean"]),
        std=tuple(preprocessing["std"]),
        crop_pct=preprocessing["crop_pct"],
        crop_mode=preprocessing["crop_mode"],
        **extra,
    )


def unnormalise(images: torch.Tensor, preprocessing: dict[str, Any] | None) -> np.ndarray:
    """Model inputs (N, C, H, W), normalised with the model's mean/std, back as a person sees them:
    (N, H, W, 3) uint8."""
    images = images.detach().float().cpu()
    if preprocessing:
        mean = torch.tensor(preprocessing["mean"]).view(1, -1, 1, 1)
        std = torch.tensor(preprocessing["std"]).view(1, -1, 1, 1)
        images = images * std + mean
    images = images.clamp(0, 1).mul(255).round().to(torch.uint8)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return images.permute(0, 2, 3, 1).numpy()
