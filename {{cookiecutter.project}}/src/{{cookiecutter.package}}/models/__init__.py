"""Models: timm networks, the preprocessing they decide, and the LightningModule that trains them."""

from .classifier import ImageClassifier
from .network import create_network
from .preprocessing import backbone_preprocessing, resolve_preprocessing

__all__ = ["ImageClassifier", "backbone_preprocessing", "create_network", "resolve_preprocessing"]
