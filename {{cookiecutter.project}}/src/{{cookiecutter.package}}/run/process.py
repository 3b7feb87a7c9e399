"""Process-wide settings every run applies before building anything: precision, malloc, seeds."""

from __future__ import annotations

import torch
import torch.utils.deterministic
from lightning.pytorch import seed_everything
from omegaconf import DictConfig

from ..errors import ConfigurationError
from .allocator import keep_freed_memory_for_reuse

MATMUL_PRECISIONS = ("highest", "high", "medium")


def configure_process(config: DictConfig) -> None:
    """Apply `float32_matmul_precision`, `keep_freed_memory` and `seed` (also for loader workers)."""
    precision = config.float32_matmul_precision
    if precision not in MATMUL_PRECISIONS:
        raise ConfigurationError(
            f"float32_matmul_precision={precision!r}: use one of {', '.join(MATMUL_PRECISIONS)}."
        )
    torch.set_float32_matmul_precision(precision)
    # trainer.deterministic=true (the CPU presets) makes torch also fill every new tensor's memory
    # before use, a guard against kernels that read memory they never wrote. Deterministic kernels
    # write all of their output: the default run's numbers are the same to the last digit without
    # it, and the filling cost a resnet10t training step on 2 CPU cores 2 to 5% of its speed.
    torch.utils.deterministic.fill_uninitialized_memory = False
    if config.get("keep_freed_memory"):
        keep_freed_memory_for_reuse()
    seed_everything(config.seed, workers=True)
