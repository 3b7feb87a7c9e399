"""Create timm networks by name (the whole model: backbone and classifier), with errors that say
what to type instead, and load local weights into them."""

from __future__ import annotations

import difflib
import logging
import re
import sys
from pathlib import Path
from typing import Any

import timm
import torch
from timm.models import load_state_dict
from torch import nn

from ..errors import ConfigurationError
from ..finetune import classifier_parameter_names

log = logging.getLogger(__name__)

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


def trains_from_scratch(model_config: Any) -> bool:
    """Whether a model config (configs/model) starts from random weights: not pretrained, no weights file."""
    return not (model_config.get("pretrained") or model_config.get("weights"))


def create_network(
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
        model = timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
        load_backbone_weights(model, weights)
        return model
    try:
        model = timm.create_model(name, pretrained=pretrained, num_classes=num_classes, **kwargs)
    except Exception as error:
        if not pretrained:
            raise
        raise ConfigurationError(
            f"Could not load the pretrained weights of {name!r} ({type(error).__name__}: "
            f"{_first_line(error)}). Without network access, point model.weights at a local weights "
            "file (safetensors or a torch state dict), e.g. model.weights=/path/to/model.safetensors, "
            "or train from scratch with model.pretrained=false. "
            "Weights already in the Hugging Face cache load offline with HF_HUB_OFFLINE=1."
        ) from error
    if pretrained and num_classes == model.pretrained_cfg.get("num_classes"):
        # timm kept the pretrained classifier because the class counts match; ours are other classes.
        model.reset_classifier(num_classes)
    return model


def read_weights(weights: str) -> dict[str, torch.Tensor]:
    """Read a safetensors file, a torch state dict, or a timm or Lightning checkpoint as a state dict.

    timm's reader unwraps `state_dict` / `model` (preferring EMA weights) and a DDP `module.` prefix;
    the `model.` prefix of this project's own checkpoints is removed here.
    """
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"model.weights={weights!r}: no such file.")
    try:
        state = load_state_dict(str(path), use_ema=True, weights_only=True)
    except Exception as error:
        raise ConfigurationError(
            f"model.weights={weights!r} is not a weights file this project can read (safetensors, a torch "
            f"state dict or a timm/Lightning checkpoint): {type(error).__name__}: {_first_line(error)}"
        ) from error
    state = {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}
    if state and all(key.startswith("model.") for key in state):
        state = {key.removeprefix("model."): value for key, value in state.items()}
    return state


def load_backbone_weights(model: nn.Module, weights: str) -> list[str]:
    """Load every tensor of `model` but its classifier from the file `weights`; return their names.

    Raises ConfigurationError naming the first tensor whose shape does not fit, or the first one
    the file lacks. Tensors of the file that the model has no place for are ignored with a warning.
    """
    state = read_weights(weights)
    # timm's per-architecture converter (e.g. resizing ViT position embeddings to the model's
    # image size); it passes weights already in timm's layout through.
    convert = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
    if convert is not None:
        try:
            state = convert(state, model)
        except Exception as error:  # a converter for another layout: compare the tensors as they are
            log.debug("checkpoint_filter_fn skipped: %s", error)
    classifier = classifier_parameter_names(model)
    expected = {key: value for key, value in model.state_dict().items() if key not in classifier}
    mismatched = [key for key, value in expected.items() if key in state and state[key].shape != value.shape]
    if mismatched:
        key = mismatched[0]
        raise ConfigurationError(
            f"model.weights={weights!r} does not fit {type(model).__name__} "
            f"({model.pretrained_cfg.get('architecture', '')}): tensor {key!r} has shape "
            f"{tuple(state[key].shape)} in the file but {tuple(expected[key].shape)} in the model "
            f"({len(mismatched)} tensor(s) differ). Use weights of the same architecture as model.backbone."
        )
    missing = [key for key in expected if key not in state and not key.endswith("num_batches_tracked")]
    if missing:
        raise ConfigurationError(
            f"model.weights={weights!r} has no tensor {missing[0]!r} ({len(missing)} of the model's "
            f"{len(expected)} are missing): is it a checkpoint of another architecture than model.backbone?"
        )
    unexpected = sorted(set(state) - set(expected) - classifier)
    if unexpected:
        log.warning(
            "Ignored %d tensor(s) of %s that %s has no place for, e.g. %s.",
            len(unexpected),
            weights,
            type(model).__name__,
            unexpected[0],
        )
    loaded = [key for key in expected if key in state]
    model.load_state_dict({key: state[key] for key in loaded}, strict=False)
    log.info(
        "Loaded %d tensors from %s; the classifier (%s) starts fresh for %d classes.",
        len(loaded),
        weights,
        ", ".join(sorted(classifier)),
        getattr(model, "num_classes", "the data's"),
    )
    return loaded


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""
