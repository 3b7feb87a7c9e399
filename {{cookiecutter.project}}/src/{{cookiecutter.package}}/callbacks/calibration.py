"""How far the test confidences are from the accuracy: the expected calibration error and a reliability
diagram, also before temperature scaling when the model carries one (temperature_scaling=true)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from lightning.pytorch import LightningModule, Trainer
from torchmetrics.classification import MulticlassCalibrationError
from torchmetrics.utilities import dim_zero_cat

from ..models.calibration import BINS
from ..pictures import new_figure, place_axes
from .figures import RunFilesCallback

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def temperature(pl_module: LightningModule) -> float | None:
    """The temperature folded into the model's weights (run/calibration.py), or None."""
    return (getattr(pl_module, "calibration", None) or {}).get("temperature")


def reliability(metric: MulticlassCalibrationError) -> dict[str, list[float]]:
    """Per confidence bin (BINS, equal width): mean confidence, accuracy and share of the images, from
    the metric's states of all processes."""
    with metric.sync_context():
        confidences = dim_zero_cat(metric.confidences).cpu().numpy()
        correct = dim_zero_cat(metric.accuracies).cpu().numpy()
    bins = np.clip(np.ceil(confidences * BINS).astype(int) - 1, 0, BINS - 1)
    counts = np.bincount(bins, minlength=BINS)
    filled = np.maximum(counts, 1)
    return {
        "confidence": (np.bincount(bins, confidences, BINS) / filled).tolist(),
        "accuracy": (np.bincount(bins, correct, BINS) / filled).tolist(),
        "share": (counts / max(counts.sum(), 1)).tolist(),
    }


def reliability_figure(curves: dict[str, dict[str, list[float]]], title: str) -> Figure:
    """Accuracy against confidence per bin (bins with images only), one line per curve, the diagonal
    (perfect calibration) dashed, and the share of images per bin as bars below."""
    figure = new_figure(5.0, 5.6)
    axes = place_axes(figure, 0.7, 1.9, 4.0, 3.3)
    shares = place_axes(figure, 0.7, 0.5, 4.0, 1.0)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="calibrated")
    for label, curve in curves.items():
        filled = [i for i, share in enumerate(curve["share"]) if share > 0]
        x = [curve["confidence"][i] for i in filled]
        axes.plot(x, [curve["accuracy"][i] for i in filled], marker="o", markersize=3, label=label)
    centres = (np.arange(BINS) + 0.5) / BINS
    shares.bar(centres, next(iter(curves.values()))["share"], width=1 / BINS, color="tab:blue", alpha=0.6)
    for target in (axes, shares):
        target.set_xlim(0, 1)
        target.grid(alpha=0.3)
    axes.set_ylim(0, 1)
    axes.set_ylabel("accuracy")
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8, loc="upper left")
    shares.set_xlabel("confidence (top class probability)")
    shares.set_ylabel("images")
    return figure


class Calibration(RunFilesCallback):
    """At test: the expected calibration error (torchmetrics' MulticlassCalibrationError, BINS bins)
    logged as test/ece and put in results.json ("calibration"), and a reliability diagram,
    <dirpath>/test_reliability.png. A temperature-scaled model also gets test/ece_unscaled, from its
    logits times T (what it gave before the scaling), and that curve."""

    def __init__(self, dirpath: str) -> None:
        super().__init__(dirpath)
        self.metrics: dict[str, MulticlassCalibrationError] = {}

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not self.metrics:
            classes = len(self.class_names(pl_module))
            scaled = MulticlassCalibrationError(classes, n_bins=BINS, validate_args=False)
            self.metrics = {"ece": scaled, "ece_unscaled": scaled.clone()}
        for metric in self.metrics.values():
            metric.to(pl_module.device)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if outputs is None:
            return
        logits, targets = outputs["logits"].float(), outputs["targets"]
        self.metrics["ece"].update(logits.softmax(-1), targets)
        if temperature(pl_module):
            self.metrics["ece_unscaled"].update((logits * temperature(pl_module)).softmax(-1), targets)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        used = {name: metric for name, metric in self.metrics.items() if metric.update_count}
        if not used:
            return
        results: dict[str, Any] = {"temperature": temperature(pl_module)}
        curves = {}
        for name, metric in used.items():
            results[f"test_{name}"] = float(metric.compute())
            pl_module.log(f"test/{name}", results[f"test_{name}"], sync_dist=False, rank_zero_only=True)
            curves["before scaling" if name == "ece_unscaled" else "model"] = reliability(metric)
            metric.reset()
        self.results = {"calibration": {**(getattr(pl_module, "calibration", None) or {}), **results}}
        if self.writes_files(trainer):
            shown = ", ".join(f"{name} {value:.4f}" for name, value in results.items() if "ece" in name)
            figure = reliability_figure(curves, f"Reliability at test ({shown})")
            self.save_figure(trainer, figure, "test_reliability", "reliability diagram")
