"""Models: timm networks and the LightningModule that trains them."""

from .backbone import create_backbone
from .classifier import ImageClassifier

__all__ = ["ImageClassifier", "create_backbone"]
