"""Which classes the model confuses: confusion matrices (validation at the best epoch, test) and
precision, recall, F1 and support per class, from the predictions the model makes anyway."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from .figures import RunFilesCallback

log = logging.getLogger(__name__)
# Rows of the per-class table printed at the end of a test; the CSV always holds every class.
PRINTED_CLASSES = 30


def per_class_metrics(counts: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Precision, recall, F1 and support of each class (rows of `counts`: true class, columns:
    predicted), their macro and support-weighted averages, and the accuracy. A class never predicted
    has precision 0, one never present recall 0 (scikit-learn's zero_division=0)."""
    counts = np.asarray(counts, dtype=np.float64)
    hits = np.diag(counts)
    support = counts.sum(axis=1)
    predicted = counts.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    total = max(support.sum(), 1.0)

    def averages(weights: np.ndarray) -> dict[str, float]:
        return {
            name: float(np.sum(values * weights))
            for name, values in (("precision", precision), ("recall", recall), ("f1", f1))
        }

    return {
        "classes": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "macro": averages(np.full(len(class_names), 1 / len(class_names))),
        "weighted": averages(support / total),
        "accuracy": float(hits.sum() / total),
    }


def best_checkpoint_rule(trainer: Trainer) -> tuple[str | None, str]:
    """The metric and mode ("max"/"min") by which the run keeps its best checkpoint (None: none is kept)."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.monitor is not None:
            return callback.monitor, callback.mode
    return None, "max"


class ConfusionMatrix(RunFilesCallback):
    """Confusion matrices, counts and row-normalised, as PNG and CSV in `dirpath`, and logger images:
    `val_confusion_matrix` at the epoch of the best checkpoint (the last epoch when none is kept),
    `test_confusion_matrix` at every test. Counts are summed over all processes under DDP.
    """

    def __init__(self, dirpath: str) -> None:
        super().__init__(dirpath)
        self.metrics: dict[str, MulticlassConfusionMatrix] = {}
        self.best: dict[str, Any] = {"epoch": None, "score": None, "counts": None}

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        classes = len(self.class_names(pl_module))
        for split in ("val", "test"):
            if split not in self.metrics:
                self.metrics[split] = MulticlassConfusionMatrix(classes, validate_args=False)
            self.metrics[split].to(pl_module.device)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if not trainer.sanity_checking and outputs is not None:
            self.metrics["val"].update(outputs["logits"], outputs["targets"])

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if outputs is not None:
            self.metrics["test"].update(outputs["logits"], outputs["targets"])

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        metric = self.metrics["val"]
        if trainer.sanity_checking or not metric.update_count:
            return
        counts = metric.compute().cpu().numpy()  # every process takes part in the sum
        metric.reset()
        monitor, mode = best_checkpoint_rule(trainer)
        score = trainer.callback_metrics.get(monitor) if monitor else None
        score = None if score is None else float(score)
        best = self.best["score"]
        improved = score is None or best is None or (score > best if mode == "max" else score < best)
        if improved:
            self.best = {"epoch": trainer.current_epoch, "score": score, "counts": counts.tolist()}

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.best["counts"] is not None and self.writes_files(trainer):
            monitor, _ = best_checkpoint_rule(trainer)
            when = f"epoch {self.best['epoch']}" + (f", best {monitor}" if monitor else "")
            self._write(trainer, pl_module, np.array(self.best["counts"]), "val", f"Validation ({when})")

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        metric = self.metrics["test"]
        if not metric.update_count:
            return
        counts = metric.compute().cpu().numpy()
        metric.reset()
        if self.writes_files(trainer):
            self._write(trainer, pl_module, counts, "test", "Test")

    def _write(
        self, trainer: Trainer, pl_module: LightningModule, counts: np.ndarray, split: str, title: str
    ):
        from .drawing import confusion_matrix_figure

        names = self.class_names(pl_module)
        name = f"{split}_confusion_matrix"
        self.save_csv(name, ["true \\ predicted", *names], ([names[i], *row] for i, row in enumerate(counts)))
        self.save_figure(
            trainer, confusion_matrix_figure(counts, names, title), name, f"{split} confusion matrix"
        )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict["best"]


class PerClassMetrics(RunFilesCallback):
    """At test: precision, recall, F1 and support per class with their macro and weighted averages,
    and top-k accuracy for each k in `top_k` below the number of classes. Printed as a table, written
    to <dirpath>/test_per_class_metrics.csv and into results.json ("test_per_class"), and logged as
    test/f1_macro and test/acc_top<k>.
    """

    def __init__(self, dirpath: str, top_k: list[int] | tuple[int, ...] = (3, 5)) -> None:
        super().__init__(dirpath)
        self.top_k = [int(k) for k in top_k]
        self.confusion: MulticlassConfusionMatrix | None = None
        self.top_k_accuracy: dict[int, MulticlassAccuracy] = {}

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        classes = len(self.class_names(pl_module))
        if self.confusion is None:
            self.confusion = MulticlassConfusionMatrix(classes, validate_args=False)
            self.top_k_accuracy = {
                k: MulticlassAccuracy(classes, top_k=k, average="micro", validate_args=False)
                for k in self.top_k
                if 1 < k < classes
            }
        for metric in (self.confusion, *self.top_k_accuracy.values()):
            metric.to(pl_module.device)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if outputs is None:
            return
        self.confusion.update(outputs["logits"], outputs["targets"])
        for metric in self.top_k_accuracy.values():
            metric.update(outputs["logits"], outputs["targets"])

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.confusion.update_count:
            return
        names = self.class_names(pl_module)
        metrics = per_class_metrics(self.confusion.compute().cpu().numpy(), names)
        # String keys ("3", "5"), as results.json keeps them.
        metrics["top_k_accuracy"] = {str(k): float(m.compute()) for k, m in self.top_k_accuracy.items()}
        for metric in (self.confusion, *self.top_k_accuracy.values()):
            metric.reset()
        # Every process holds the same synced values; logging them is for the loggers and results.json.
        pl_module.log("test/f1_macro", metrics["macro"]["f1"], sync_dist=False, rank_zero_only=True)
        for k, value in metrics["top_k_accuracy"].items():
            pl_module.log(f"test/acc_top{k}", value, sync_dist=False, rank_zero_only=True)
        self.results = {"test_per_class": metrics}
        if self.writes_files(trainer):
            path = self.save_csv(
                "test_per_class_metrics",
                ["class", "precision", "recall", "f1", "support"],
                [
                    *(
                        [name, v["precision"], v["recall"], v["f1"], v["support"]]
                        for name, v in metrics["classes"].items()
                    ),
                    *(
                        [
                            average,
                            *metrics[average].values(),
                            sum(v["support"] for v in metrics["classes"].values()),
                        ]
                        for average in ("macro", "weighted")
                    ),
                ],
            )
            self.written["per-class metrics"] = path
            print_per_class_table(metrics, path)


def print_per_class_table(metrics: dict[str, Any], path) -> None:
    from rich.console import Console
    from rich.table import Table

    classes = metrics["classes"]
    shown = list(classes.items())
    title = "Test metrics per class"
    if len(shown) > PRINTED_CLASSES:
        shown = sorted(shown, key=lambda item: item[1]["f1"])[:PRINTED_CLASSES]
        title += f" (the {PRINTED_CLASSES} lowest F1 of {len(classes)}; all in {path})"
    table = Table(title=title, title_justify="left")
    for column in ("class", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, values in shown:
        table.add_row(
            name, *(f"{values[key]:.4f}" for key in ("precision", "recall", "f1")), str(values["support"])
        )
    support = sum(v["support"] for v in classes.values())
    for average in ("macro", "weighted"):
        row = metrics[average]
        table.add_row(
            f"[bold]{average} avg",
            *(f"{row[key]:.4f}" for key in ("precision", "recall", "f1")),
            str(support),
        )
    footer = [f"accuracy {metrics['accuracy']:.4f}"]
    footer += [f"top-{k} accuracy {value:.4f}" for k, value in metrics["top_k_accuracy"].items()]
    console = Console()
    console.print(table)
    console.print(", ".join(footer), highlight=False)
