"""The model card of an exported timm folder: the run's record (record.py), the card (card.py) and the
loading code it shows (usage.py)."""

from .card import model_card, write_model_card
from .record import RunRecord

__all__ = ["RunRecord", "model_card", "write_model_card"]
