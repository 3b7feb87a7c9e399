"""Fine-tuning strategies: which weights train, from which epoch, and at which learning rate."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from timm.optim import param_groups_layer_decay, param_groups_weight_decay
from torch import nn

from .errors import ConfigurationError, check_unknown_keys


@dataclass(frozen=True)
class FinetuneStrategy:
    """The `finetune` config group (configs/finetune/*.yaml): which weights train, from when, how fast.

    unfreeze_at_epoch: 0 trains everything from the start, N only the classifier before epoch N,
    None never the backbone (a linear probe). backbone_lr_scale: the backbone's share of
    optimizer.lr. layer_decay: timm's layer-wise rate decay (None: off).
    """

    name: str
    unfreeze_at_epoch: int | None
    backbone_lr_scale: float
    layer_decay: float | None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> FinetuneStrategy:
        """The strategy of the finetune settings (every key of the group), or a full fine-tune for None."""
        if settings is None:  # no strategy: every weight trains at optimizer.lr, as finetune=full says
            return cls(name="full", unfreeze_at_epoch=0, backbone_lr_scale=1.0, layer_decay=None)
        keys = [field.name for field in fields(cls)]
        check_unknown_keys("finetune", settings, keys)
        missing = [key for key in keys if key not in settings]
        if missing:
            raise ConfigurationError(
                f"finetune.{missing[0]} is not set; a finetune option sets all of {', '.join(keys)} "
                "(see configs/finetune/full.yaml)."
            )
        decay = settings["layer_decay"]
        if decay is not None and not 0 < decay <= 1:
            raise ConfigurationError(
                f"finetune.layer_decay={decay}: use a factor in (0, 1], e.g. 0.75, or null to turn it off."
            )
        return cls(**settings)

    def frozen_at(self, epoch: int) -> bool:
        """Whether only the classifier trains in `epoch`."""
        return self.unfreeze_at_epoch is None or epoch < self.unfreeze_at_epoch


def classifier_parameter_names(model: nn.Module) -> set[str]:
    """Names of the parameters of the timm model's classifier (the layer re-initialised for our classes)."""
    classifier = model.get_classifier()
    ids = {id(parameter) for parameter in classifier.parameters()}
    return {name for name, parameter in model.named_parameters() if id(parameter) in ids}


def backbone_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """Every parameter that is not the classifier's."""
    classifier = classifier_parameter_names(model)
    return (parameter for name, parameter in model.named_parameters() if name not in classifier)


def backbone_modules(model: nn.Module) -> Iterator[nn.Module]:
    """Every submodule that computes the features the classifier sees, which a frozen backbone runs in
    eval mode: all but the classifier and the dropout before it (`model.drop_rate`).

    timm models apply that dropout in their head: as a function of the model's own training flag
    (ResNet, EfficientNet: the model itself is excluded), or as a Dropout module in the top-level
    module that holds the classifier (ConvNeXt's `head.drop`) or in a top-level `head_drop` (ViT).
    """
    classifier = model.get_classifier()
    head_side = [
        child
        for name, child in model.named_children()
        if name.startswith("head") or any(module is classifier for module in child.modules())
    ]
    keep = {id(module) for module in classifier.modules()} | {
        id(module) for child in head_side for module in child.modules() if isinstance(module, nn.Dropout)
    }
    return (module for module in model.modules() if module is not model and id(module) not in keep)


def parameter_groups(
    model: nn.Module,
    weight_decay: float,
    backbone_lr_scale: float = 1.0,
    layer_decay: float | None = None,
    weight_decay_exclude_1d: bool = True,
) -> list[dict[str, Any]]:
    """timm's parameter groups, each split into a classifier and a backbone part.

    timm puts norm and bias parameters (1-d) and the model's `no_weight_decay()` names in groups
    without weight decay, and with `layer_decay` gives each layer an `lr_scale`. The backbone parts
    get their scale multiplied by `backbone_lr_scale`. Frozen parameters are left out. The groups
    feed optim.build_optimizer; the schedule then applies each group's `lr_scale` on every step
    (see optim.build_scheduler).
    """
    no_weight_decay = set(getattr(model, "no_weight_decay", set)())
    by_layer = layer_decay is not None and layer_decay < 1
    if by_layer:
        groups = param_groups_layer_decay(
            model,
            weight_decay=weight_decay,
            layer_decay=layer_decay,
            no_weight_decay_list=no_weight_decay,
            weight_decay_exclude_1d=weight_decay_exclude_1d,
        )
    else:
        groups = param_groups_weight_decay(
            model,
            weight_decay=weight_decay,
            no_weight_decay_list=no_weight_decay,
            weight_decay_exclude_1d=weight_decay_exclude_1d,
        )
    layer_names = _group_labels(groups, by_layer)
    classifier_names = classifier_parameter_names(model)
    classifier = {id(p) for name, p in model.named_parameters() if name in classifier_names}
    split: dict[str, dict[str, Any]] = {}
    for group, label in zip(groups, layer_names, strict=True):
        scale = group.get("lr_scale", 1.0)
        for part, factor in (("head", 1.0), ("backbone", backbone_lr_scale)):
            params = [p for p in group["params"] if (id(p) in classifier) == (part == "head")]
            if not params:
                continue
            name = f"{part}{label}" + ("" if group["weight_decay"] else "_no_decay")
            if name in split:
                # timm keeps a layer's decay and no-decay groups apart even when weight_decay is 0
                # (optimizer=adam); with equal settings they are one group, and the learning-rate
                # monitor refuses two groups of one name.
                split[name]["params"].extend(params)
                continue
            split[name] = {
                "params": params,
                "weight_decay": group["weight_decay"],
                "lr_scale": scale * factor,
                "name": name,
            }
    return list(split.values())


def _group_labels(groups: list[dict[str, Any]], by_layer: bool) -> list[str]:
    """A label per timm group ("/layer_3" with layer decay), unique together with the decay tag."""
    if not by_layer:
        return ["" for _ in groups]
    # With a decay below 1 each layer has its own scale, growing from the stem to the head.
    scales = sorted({group["lr_scale"] for group in groups})
    return [f"/layer_{scales.index(group['lr_scale'])}" for group in groups]
