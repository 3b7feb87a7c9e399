"""Temperature scaling (Guo et al. 2017): one number T that divides the logits so that the confidences
match the accuracy, fitted on held-out images and folded into the classifier's weights, so that every
output of the model (checkpoint, exports, predictions, the server) carries it without code of its own."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.classification import multiclass_calibration_error

from ..errors import ConfigurationError

# torchmetrics' default number of confidence bins for the expected calibration error.
BINS = 15


def expected_calibration_error(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The mean |accuracy - confidence| over BINS confidence bins, weighted by their images (torchmetrics)."""
    return float(
        multiclass_calibration_error(logits.float().softmax(-1), targets, logits.shape[-1], n_bins=BINS)
    )


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The T > 0 that minimises the cross-entropy of logits / T (L-BFGS on log T, from T = 1)."""
    logits, log_t = logits.detach().float(), torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = F.cross_entropy(logits / log_t.exp(), targets)
        value.backward()
        return value

    optimizer.step(loss)
    return float(log_t.detach().exp())


def fold_temperature(network: nn.Module, temperature: float) -> None:
    """Divide the weights and bias of the network's last layer by `temperature`, in place: its logits
    become logits / T exactly, as the layer is affine and nothing follows it."""
    head = network.get_classifier()
    if not isinstance(head, (nn.Linear, nn.Conv2d)):
        raise ConfigurationError(
            f"temperature_scaling=true folds T into the last layer, but {type(network).__name__}'s "
            f"classifier is a {type(head).__name__}, not a Linear or 1x1 Conv2d layer; set "
            "temperature_scaling=false for this backbone."
        )
    with torch.no_grad():
        head.weight.div_(temperature)
        if head.bias is not None:
            head.bias.div_(temperature)
