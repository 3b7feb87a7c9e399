"""What a classifier's outputs say about each image: class probabilities and the top-k classes, shared by
prediction (files) and serving (HTTP requests) so both answer the same for the same image."""

from __future__ import annotations

from typing import Any

import torch


def class_probabilities(network: torch.nn.Module, images: torch.Tensor, flip: bool) -> torch.Tensor:
    """Softmax probabilities (float32), averaged with those of the mirrored images when `flip`."""
    probabilities = network(images).float().softmax(dim=-1)
    if flip:
        probabilities = (probabilities + network(images.flip(-1)).float().softmax(dim=-1)) / 2
    return probabilities


def top_predictions(
    probabilities: torch.Tensor, class_names: list[str], k: int
) -> list[list[dict[str, Any]]]:
    """The k most probable classes of each row, best first, in transformers' image-classification
    pipeline shape: `[{"label": ..., "score": ...}, ...]` (k at most the number of classes)."""
    scores, classes = probabilities.topk(min(int(k), len(class_names)), dim=-1)
    return [
        [{"label": class_names[c], "score": s} for c, s in zip(row_classes, row_scores, strict=True)]
        for row_classes, row_scores in zip(classes.tolist(), scores.tolist(), strict=True)
    ]
