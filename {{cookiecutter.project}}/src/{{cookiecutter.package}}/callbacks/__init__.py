"""Lightning callbacks of this project, configured in configs/callbacks and configs/ema."""

from .ema import EMAWeightAveraging
from .preemption import CheckpointOnSigterm
from .seeding import SeedEveryStep

__all__ = ["CheckpointOnSigterm", "EMAWeightAveraging", "SeedEveryStep"]
