"""The predict task: label new images with a trained checkpoint, as CSV or JSON Lines."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.callbacks import RichProgressBar
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset

from .atomic import csv_text, write_atomically
from .data.images import IMAGE_EXTENSIONS, READ_ERRORS, is_image_file, load_rgb, read_image_size
from .data.transforms import build_transform
from .errors import ConfigurationError
from .models import ImageClassifier, class_probabilities, top_predictions
from .run.checkpoints import load_classifier
from .run.outputs import check_output_writable
from .run.task import Run

log = logging.getLogger(__name__)
OUTPUT_FORMATS = (".csv", ".jsonl")


Skipped = list[tuple[Path, str]]  # (file, why it was not predicted)


def find_images(inputs: str) -> tuple[list[Path], Skipped]:
    """The images named by `inputs` and the files left out: an image file, a folder (searched
    recursively, in sorted order; hidden files and folders ignored) or a CSV file whose `path` column
    (or first column) lists images, relative to the CSV's folder. One rule everywhere: an image is a
    file with an image extension (data/images.py); every other file named or found is left out and
    listed."""
    if not str(inputs).strip():  # Path("") is the current folder: everything under it
        raise ConfigurationError("inputs is empty; give an image, a folder of images or a CSV list.")
    path = Path(str(inputs)).expanduser()
    if path.is_dir():
        named = sorted(
            p
            for p in path.rglob("*")
            if not p.is_dir() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
    elif path.is_file() and path.suffix.lower() == ".csv":
        named = csv_listing(path, inputs)
    elif path.is_file() and not is_image_file(path):
        raise ConfigurationError(
            f"inputs={str(inputs)!r} is neither an image ({', '.join(IMAGE_EXTENSIONS)}) nor a CSV list "
            "of images; give an image, a folder of images or a CSV with a `path` column."
        )
    elif path.is_file():
        named = [path]
    else:
        raise ConfigurationError(
            f"inputs={str(inputs)!r}: no such file or folder. Give an image, a folder of images or a CSV "
            "with a `path` column."
        )
    if not named:
        raise ConfigurationError(f"inputs={str(inputs)!r} holds no image files ({path}).")
    images = [p for p in named if is_image_file(p) and p.is_file()]
    skipped = [
        (p, "not an image file") if p.exists() else (p, "no such file") for p in named if p not in images
    ]
    return images, [(p, "broken link" if p.is_symlink() else why) for p, why in skipped]


def csv_listing(path: Path, inputs: str) -> list[Path]:
    """The files a CSV lists in its `path` column (or its first column when no header names one)."""
    with path.open(newline="") as file:
        rows = list(csv.reader(file))
    if not rows:
        raise ConfigurationError(f"inputs={str(inputs)!r} is an empty CSV file.")
    if "path" not in rows[0] and any(sign in rows[0][0] for sign in ";\t|"):
        raise ConfigurationError(
            f"inputs={str(inputs)!r}: its first line {','.join(rows[0])!r} is not comma-separated; "
            "write the CSV with commas (a `path` column, or the image paths in the first column)."
        )
    column = rows[0].index("path") if "path" in rows[0] else 0
    body = rows[1:] if "path" in rows[0] else rows
    return [(path.parent / row[column]).resolve() for row in body if row and row[column].strip()]


class ImagesToPredict(Dataset):
    """Image files through the model's evaluation transform; a file that cannot be decoded gives a
    blank input and readable=False, so that the rest of the batch is still predicted."""

    def __init__(self, paths: list[Path], transform, input_size: tuple[int, int, int]) -> None:
        self.paths, self.transform, self.input_size = paths, transform, tuple(input_size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, bool]:
        try:
            return self.transform(load_rgb(self.paths[index])), index, True
        except READ_ERRORS:
            return torch.zeros(self.input_size), index, False


class Predictor(LightningModule):
    """Softmax probabilities of a classifier, optionally averaged with those of the mirrored image."""

    def __init__(self, classifier: ImageClassifier, flip: bool) -> None:
        super().__init__()
        self.classifier, self.flip = classifier, flip

    def predict_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        images, indices, readable = batch
        probabilities = class_probabilities(self.classifier, images, self.flip)
        return {"probabilities": probabilities.cpu(), "indices": indices.cpu(), "readable": readable.cpu()}


def predictions_text(rows: list[tuple[str, list[str], list[float]]], suffix: str) -> str:
    """CSV (`path, label_1..k, prob_1..k`) or JSON Lines in the shape of Hugging Face's
    image-classification pipeline (`{"path", "predictions": [{"label", "score"}, ...]}`)."""
    if suffix == ".jsonl":
        return "".join(
            json.dumps(
                {"path": path, "predictions": [{"label": a, "score": b} for a, b in zip(*top, strict=True)]}
            )
            + "\n"
            for path, *top in rows
        )
    k = len(rows[0][1]) if rows else 0
    header = ["path", *(f"label_{i}" for i in range(1, k + 1)), *(f"prob_{i}" for i in range(1, k + 1))]
    return csv_text(header, ([path, *labels, *(f"{s:.6f}" for s in scores)] for path, labels, scores in rows))


def output_path(config: DictConfig) -> Path:
    output = Path(config.output).expanduser() if config.get("output") else None
    output = output or Path(config.paths.output_dir) / "predictions.csv"
    if output.suffix.lower() not in OUTPUT_FORMATS:
        raise ConfigurationError(
            f"output={str(config.output)!r}: the extension says the format; use .csv or .jsonl."
        )
    return check_output_writable("output", output)


def report_skipped(skipped: Skipped, rows: list, inputs: str) -> None:
    """Log every file left out (results.json lists them too); refuse a run that predicted nothing."""
    if skipped and not rows:
        path, why = skipped[0]
        raise ConfigurationError(
            f"inputs={str(inputs)!r}: none of its {len(skipped)} file(s) could be read as an image "
            f"(first: {path}: {why}); nothing was written. Give image files."
        )
    for path, why in skipped:
        log.warning("Skipped %s: %s", path, why)
    if skipped:
        log.warning("Skipped %d file(s) in all; results.json lists them.", len(skipped))


def predict(config: DictConfig) -> dict[str, Any]:
    """Predict the top-k classes of every image in `config.inputs`; write them to `config.output`."""
    with Run(config) as run:
        output = output_path(config)
        paths, skipped = find_images(config.inputs)
        readable = []
        for path in paths:  # header checks first: a broken file costs no model time
            try:
                read_image_size(path)
            except READ_ERRORS as error:
                skipped.append((path, f"{type(error).__name__}: {error}"))
            else:
                readable.append(path)
        if not readable:
            report_skipped(skipped, [], config.inputs)
        model = load_classifier(config.ckpt_path).eval()
        preprocessing = model.preprocessing
        dataset = ImagesToPredict(
            readable, build_transform(preprocessing, is_training=False), preprocessing["input_size"]
        )
        loader = DataLoader(dataset, batch_size=int(config.batch_size), num_workers=int(config.num_workers))
        trainer = run.build_trainer([RichProgressBar()])
        if trainer.world_size > 1:
            raise ConfigurationError(
                "predict.py runs on one device; use trainer=cpu or trainer=gpu (not a multi-device preset)."
            )
        run.save_config()
        batches = trainer.predict(Predictor(model, bool(config.flip_tta)), loader)
        rows = []
        for batch in batches:
            tops = top_predictions(batch["probabilities"], model.class_names, int(config.top_k))
            indices, readable_flags = batch["indices"].tolist(), batch["readable"].tolist()
            for index, ok, top in zip(indices, readable_flags, tops, strict=True):
                if ok:
                    rows.append((str(readable[index]), [p["label"] for p in top], [p["score"] for p in top]))
                else:
                    skipped.append((readable[index], "cannot be decoded"))
        report_skipped(skipped, rows, config.inputs)
        output.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(output, predictions_text(rows, output.suffix.lower()))
        checkpoint = str(Path(config.ckpt_path).expanduser().resolve())
        return run.finish(
            {
                "checkpoint": checkpoint,
                "predictions": str(output),
                "images": len(rows),
                "skipped": [{"path": str(path), "reason": why} for path, why in skipped],
            },
            title=f"Predicted {len(rows)} image{'' if len(rows) == 1 else 's'} with {checkpoint}",
            paths={"predictions": output},
            metrics={},
        )
