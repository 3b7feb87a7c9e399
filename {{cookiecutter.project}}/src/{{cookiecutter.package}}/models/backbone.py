"""Create timm models by name, with errors that say what to type instead."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import timm
from torch import nn

from ..errors import ConfigurationError

# Names timm resolves outside its registry (Hugging Face hub repos, local directories).
EXTERNAL_PREFIXES = ("hf-hub:", "hf_hub:", "local-dir:")


def check_backbone_name(name: str) -> None:
    """Raise ConfigurationError naming close timm models when `name` is not one timm knows."""
    if name.startswith(EXTERNAL_PREFIXES) or timm.is_model(name):
        return
    architecture = name.split(".", 1)[0]
    close = difflib.get_close_matches(architecture, timm.list_models(), n=5, cutoff=0.6)
    family = re.match(r"[A-Za-z]+", architecture)
    pattern = f"{family.group(0)}*" if family else "*"
    suggestion = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigurationError(
        f"Unknown backbone {name!r}.{suggestion} "
        f"See the names with: python -c \"import timm; print(timm.list_models('{pattern}'))\""
    )


def create_backbone(
    name: str,
    num_classes: int,
    pretrained: bool = False,
    weights: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Return `timm.create_model(name)` with a fresh classifier for `num_classes` classes.

    `pretrained` loads timm's default weights (hub or local cache); `weights` loads a local file
    instead, offline. Either way every weight but the classifier's comes from the weights.
    """
    check_backbone_name(name)
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"model.weights={weights!r}: no such file.")
        kwargs["pretrained_cfg_overlay"] = {"file": str(path.resolve())}
        pretrained = True
    try:
        return timm.create_model(name, pretrained=pretrained, num_classes=num_classes, **kwargs)
    except ConfigurationError:
        raise
    except Exception as error:
        if not pretrained or weights is not None:
            raise
        raise ConfigurationError(
            f"Could not load the pretrained weights of {name!r} ({type(error).__name__}: "
            f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}). Without network "
            "access, point model.weights at a local weights file (safetensors or a torch state dict), "
            "e.g. model.weights=/path/to/model.safetensors, or train from scratch with "
            "model.pretrained=false. "
            "Weights already in the Hugging Face cache load offline with HF_HUB_OFFLINE=1."
        ) from error
