"""Image transforms from the backbone's own data config (timm), with explicit overrides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import timm
from timm.data import create_transform, resolve_data_config


def backbone_data_config(backbone: str) -> dict[str, Any]:
    """Return timm's preprocessing for `backbone` (input size, mean, std, interpolation, crop)."""
    pretrained_cfg = timm.models.get_pretrained_cfg(backbone, allow_unregistered=False)
    if pretrained_cfg is None:  # hub or local models: timm's defaults
        return resolve_data_config({})
    return resolve_data_config({}, pretrained_cfg=pretrained_cfg.to_dict())


def resolve_preprocessing(
    backbone: str,
    image_size: int | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    interpolation: str | None = None,
    crop_pct: float | None = None,
) -> dict[str, Any]:
    """Return the preprocessing a model trains and is evaluated with, as plain data.

    Each argument left as None keeps the backbone's own value.
    """
    config = backbone_data_config(backbone)
    overrides = {
        "input_size": None if image_size is None else (3, int(image_size), int(image_size)),
        "mean": mean,
        "std": std,
        "interpolation": interpolation,
        "crop_pct": crop_pct,
    }
    config.update({key: value for key, value in overrides.items() if value is not None})
    return {
        "input_size": [int(v) for v in config["input_size"]],
        "mean": [float(v) for v in config["mean"]],
        "std": [float(v) for v in config["std"]],
        "interpolation": str(config["interpolation"]),
        "crop_pct": float(config["crop_pct"]),
        "crop_mode": str(config.get("crop_mode", "center")),
    }


def build_transform(
    preprocessing: Mapping[str, Any], is_training: bool, train_transform: Mapping[str, Any] | None = None
):
    """Build the torchvision transform for training or evaluation with timm.data.create_transform.

    `train_transform` holds extra create_transform arguments for training (scale, hflip, ...).
    """
    extra = dict(train_transform or {}) if is_training else {}
    for key in ("scale", "ratio"):
        if extra.get(key) is not None:
            extra[key] = tuple(extra[key])
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
