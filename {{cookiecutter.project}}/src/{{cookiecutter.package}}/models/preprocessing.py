"""The preprocessing a model trains and is evaluated with, decided by the built timm model; the one
module that asks timm for a model's data config or pretrained config.

timm's way round: the model's pretrained config says its input size, mean/std, interpolation and crop
(`timm.data.resolve_model_data_config(model)`); the user's data.* settings override single values; the
data pipeline follows (`timm.data.create_transform`). This module is the one place that asks timm for
it. The result is plain data: the classifier saves it in its checkpoints, so evaluation, prediction,
export and serving use what training used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import timm
import torch
from timm.data import resolve_model_data_config
from torch import nn

log = logging.getLogger(__name__)
# The data.* settings that override the model's own values; None keeps the model's.
OVERRIDE_KEYS = ("image_size", "mean", "std", "interpolation", "crop_pct")
# Trained from scratch with data.image_size=null, the model input follows the data: the typical image
# side rounded to a multiple of AUTO_SIZE_STEP, at least MIN_AUTO_SIZE, at most the backbone's native size.
AUTO_SIZE_STEP = 8
MIN_AUTO_SIZE = 32
# A native input this many times the typical image side (or more) means most images are upscaled.
UPSCALE_WARNING = 2.0


def resolve_preprocessing(
    network: nn.Module,
    overrides: Mapping[str, Any] | None = None,
    *,
    from_scratch: bool = False,
    typical_image_side: Callable[[], float | None] = lambda: None,
) -> dict[str, Any]:
    """Return the preprocessing of the timm model `network` with the data.* `overrides` applied.

    With image_size None the input size is the model's native one, except for a model trained
    `from_scratch` that accepts any size: then it follows the data (`typical_image_side()`, the median
    short side of the training images, asked for only when needed). The choice and its reason are logged.
    """
    settings = {key: None for key in OVERRIDE_KEYS} | dict(overrides or {})
    config = resolve_model_data_config(network)
    config.update(
        {
            key: settings[key]
            for key in ("mean", "std", "interpolation", "crop_pct")
            if settings[key] is not None
        }
    )
    native = int(config["input_size"][-1])
    if settings["image_size"] is not None:
        side = int(settings["image_size"])
    else:
        fixed = bool(getattr(network, "pretrained_cfg", {}).get("fixed_input_size", False))
        side = choose_image_size(native, from_scratch, fixed, typical_image_side())
    return {
        "input_size": [int(config["input_size"][0]), side, side],
        "mean": [float(v) for v in config["mean"]],
        "std": [float(v) for v in config["std"]],
        "interpolation": str(config["interpolation"]),
        "crop_pct": float(config["crop_pct"]),
        "crop_mode": str(config.get("crop_mode", "center")),
    }


def backbone_preprocessing(
    backbone: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    from_scratch: bool = False,
    typical_image_side: Callable[[], float | None] = lambda: None,
) -> dict[str, Any]:
    """resolve_preprocessing for a backbone name, without weights or memory: the network is built on
    the meta device, so the data can be looked at (or a benchmark set up) as the model would see it."""
    with torch.device("meta"):
        network = timm.create_model(backbone, pretrained=False)
    return resolve_preprocessing(
        network, overrides, from_scratch=from_scratch, typical_image_side=typical_image_side
    )


def pretrained_hub_id(backbone: str) -> str:
    """The Hugging Face Hub repository of `backbone`'s pretrained weights (timm's pretrained config),
    e.g. 'timm/resnet10t.c3_in1k', or 'timm/<backbone>' when timm names none."""
    config = timm.models.get_pretrained_cfg(backbone, allow_unregistered=False)
    return getattr(config, "hf_hub_id", None) or f"timm/{backbone}"


def choose_image_size(native: int, from_scratch: bool, fixed_input_size: bool, typical: float | None) -> int:
    """The model input side for data.image_size=null, logged with the reason."""
    if from_scratch and not fixed_input_size and typical is not None:
        side = int(min(native, max(MIN_AUTO_SIZE, round(typical / AUTO_SIZE_STEP) * AUTO_SIZE_STEP)))
        if side < native:
            # Below MIN_AUTO_SIZE the side is the floor, not the images' size: say so, not "from 8 px".
            origin = (
                f"the smallest size chosen automatically: the typical (median) short side of the training "
                f"images is only {typical:g} px"
                if side == MIN_AUTO_SIZE and typical < MIN_AUTO_SIZE
                else f"from the typical (median) short side of the training images, {typical:g} px"
            )
            log.info(
                "data.image_size=null: %d px, %s, as the model trains from scratch (the backbone's native "
                "size is %d px, for pretrained weights). Set data.image_size to choose.",
                side,
                origin,
                native,
            )
            return side
        log.info(
            "data.image_size=null: the backbone's native %d px (the training images are larger: median "
            "short side %g px).",
            native,
            typical,
        )
        return native
    reason = (
        "pretrained or loaded weights work best at it"
        if not from_scratch
        else "this backbone takes only that size"
        if fixed_input_size
        else "the data's image size is not known up front"
    )
    log.info("data.image_size=null: the backbone's native %d px (%s).", native, reason)
    if typical is not None and native >= UPSCALE_WARNING * typical:
        log.warning(
            "The model input is %d px (the backbone's native size, as data.image_size=null), but the "
            "typical (median) image is %g px on its short side, so images are upscaled: slower, no "
            "sharper. Set data.image_size=%d unless the pretrained weights need their native size.",
            native,
            typical,
            typical,
        )
    return native
