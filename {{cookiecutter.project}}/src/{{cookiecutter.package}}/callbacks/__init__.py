"""Lightning callbacks of this project, configured in configs/callbacks and configs/ema."""

from .best_checkpoint import BestCheckpoint
from .calibration import Calibration
from .confusion import ConfusionMatrix, PerClassMetrics
from .curves import LearningCurves
from .divergence import StopOnNonFiniteLoss, TrainingDiverged
from .ema import EMAWeightAveraging
from .feature_maps import FeatureMaps
from .figures import RunFilesCallback
from .last_checkpoint import LastCheckpoint, PeriodicCheckpoint
from .preemption import CheckpointOnSigterm
from .samples import SamplePredictions
from .seeding import SeedEveryStep

__all__ = [
    "BestCheckpoint",
    "Calibration",
    "CheckpointOnSigterm",
    "ConfusionMatrix",
    "EMAWeightAveraging",
    "FeatureMaps",
    "LastCheckpoint",
    "LearningCurves",
    "PerClassMetrics",
    "PeriodicCheckpoint",
    "RunFilesCallback",
    "SamplePredictions",
    "SeedEveryStep",
    "StopOnNonFiniteLoss",
    "TrainingDiverged",
]
