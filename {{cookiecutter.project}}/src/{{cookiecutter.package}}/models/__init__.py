"""Models: timm networks, the preprocessing they decide, the LightningModule that trains them, and what
their outputs say (probabilities, top-k)."""

from .classifier import ImageClassifier
from .network import create_network
from .preprocessing import backbone_preprocessing, resolve_preprocessing
from .probabilities import class_probabilities, top_predictions

__all__ = [
    "ImageClassifier",
    "backbone_preprocessing",
    "class_probabilities",
    "create_network",
    "resolve_preprocessing",
    "top_predictions",
]
