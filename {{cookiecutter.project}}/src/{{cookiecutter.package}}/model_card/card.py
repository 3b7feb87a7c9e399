"""The model card of an exported timm folder (its README.md, as the Hugging Face Hub shows it), built
from what the training run recorded beside the checkpoint."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ..models import ImageClassifier
from .record import CONFUSION_MATRIX, RunRecord, base_model, data_source
from .usage import upload_section, usage_section

# Copied into the folder beside README.md, which links to it.
CONFIG_FILE = "training_config.yaml"
# The test metrics of results.json the card's model-index lists, as the Hub's metric types.
HUB_METRICS = {
    "test/acc": ("accuracy", "Top-1 accuracy", None),
    "test/acc_top3": ("accuracy", "Top-3 accuracy", {"k": 3}),
    "test/acc_top5": ("accuracy", "Top-5 accuracy", {"k": 5}),
    "test/f1_macro": ("f1", "Macro F1", {"average": "macro"}),
}


def front_matter(
    record: RunRecord, name: str, license: str, tags: Sequence[str], dataset: str
) -> dict[str, Any]:
    """The card's YAML metadata, in the keys the Hub reads (huggingface_hub.ModelCardData)."""
    hyperparameters = record.hyperparameters
    architecture = str(hyperparameters["backbone"]).split(".")[0]
    metadata: dict[str, Any] = {
        "library_name": "timm",
        "pipeline_tag": "image-classification",
        "license": license,
        "tags": list(
            dict.fromkeys(["image-classification", "timm", "pytorch-lightning", architecture, *tags])
        ),
    }
    if base := base_model(hyperparameters):
        metadata["base_model"] = base
    metrics = [
        {"type": kind, "value": round(record.test_metrics[key], 4), "name": label}
        | ({"args": arguments} if arguments else {})
        for key, (kind, label, arguments) in HUB_METRICS.items()
        if key in record.test_metrics
    ]
    if metrics:
        metadata["model-index"] = [
            {
                "name": name,
                "results": [
                    {
                        "task": {"type": "image-classification", "name": "Image Classification"},
                        "dataset": {"type": dataset, "name": dataset, "split": "test"},
                        "metrics": metrics,
                    }
                ],
            }
        ]
    return metadata


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def training_section(record: RunRecord) -> list[str]:
    hyperparameters, config, results = record.hyperparameters, record.config, record.results
    data = config.get("data") or {}
    optimizer, scheduler = hyperparameters.get("optimizer") or {}, hyperparameters.get("scheduler") or {}
    finetune = hyperparameters.get("finetune") or {}
    sizes = results.get("split_sizes") or {}
    lines = [
        "## Training",
        "",
        f"- data: {data_source(config)}",
        "- images: "
        + (", ".join(f"{split} {count}" for split, count in sizes.items()) if sizes else "not recorded"),
        f"- epochs: {results.get('epochs', 'not recorded')} (best checkpoint by "
        f"{results.get('monitor', 'not recorded')}: `{record.checkpoint.name}`)",
        f"- fine-tuning strategy: {finetune.get('name', 'full')}"
        + "".join(f", {k} {v}" for k, v in finetune.items() if k != "name" and v is not None),
        "- optimizer: " + ", ".join(f"{key} {value}" for key, value in optimizer.items()),
        "- schedule: " + ", ".join(f"{key} {value}" for key, value in scheduler.items()),
        f"- augmentation: {data.get('augment', 'not recorded')}, random erasing "
        f"{data.get('random_erasing', 'not recorded')}, transform overrides "
        f"{data.get('train_transform') or {}}; "
        f"label smoothing {hyperparameters.get('label_smoothing')}, mixup/cutmix probability "
        f"{(hyperparameters.get('mixup') or {}).get('prob')}",
        f"- seed: {config.get('seed', 'not recorded')} (data split seed {data.get('split_seed', 'n/a')})",
        "",
        f"The run's whole configuration is in [`{CONFIG_FILE}`]({CONFIG_FILE})."
        if record.config
        else "The run's configuration was not found beside the checkpoint.",
        "",
    ]
    return lines


def metrics_section(record: RunRecord) -> list[str]:
    metrics = record.test_metrics
    if not metrics:
        return ["## Evaluation", "", "The run recorded no test metrics (trained with test=false).", ""]
    lines = ["## Evaluation", "", "On the test split:", ""]
    lines += _table(["metric", "value"], [(name, f"{value:.4f}") for name, value in metrics.items()])
    per_class = (record.results.get("test_per_class") or {}).get("classes") or {}
    if per_class:
        lines += ["", "Per class:", ""]
        lines += _table(
            ["class", "precision", "recall", "F1", "support"],
            [
                (name, f"{v['precision']:.4f}", f"{v['recall']:.4f}", f"{v['f1']:.4f}", v["support"])
                for name, v in per_class.items()
            ],
        )
    if record.confusion_matrix:
        lines += ["", f"![Test confusion matrix]({CONFUSION_MATRIX})"]
    return [*lines, ""]


def model_card(record: RunRecord, model: ImageClassifier, license: str, tags: Sequence[str] = ()) -> str:
    """README.md of the timm folder: YAML front matter, then what the model is, how it was trained, its
    test metrics, its preprocessing, how to load it and how to upload it."""
    backbone = str(record.hyperparameters["backbone"])
    classes = list(model.class_names)
    dataset = data_source(record.config).split(" (")[0]
    name = f"{backbone} fine-tuned on {dataset}"
    metadata = front_matter(record, name, license, tags, dataset)
    weights = record.hyperparameters.get("weights")
    origin = (
        f"pretrained weights `{metadata['base_model']}`"
        if metadata.get("base_model")
        else f"weights from the local file `{Path(str(weights)).name}`"
        if weights
        else "random initialisation (trained from scratch)"
    )
    preprocessing = model.preprocessing
    lines = [
        "---",
        yaml.safe_dump(metadata, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {name}",
        "",
        f"An image classifier: the timm model `{backbone}` started from {origin} and trained with "
        f"PyTorch Lightning on {len(classes)} classes: {', '.join(f'`{c}`' for c in classes)}.",
        "",
        *training_section(record),
        *metrics_section(record),
        "## Preprocessing",
        "",
        f"RGB images resized ({preprocessing['interpolation']}) and centre-cropped to "
        f"{preprocessing['input_size'][2]}x{preprocessing['input_size'][1]} pixels (crop_pct "
        f"{preprocessing['crop_pct']}, crop_mode {preprocessing['crop_mode']}), scaled to 0-1 and normalised "
        f"with mean {preprocessing['mean']} and std {preprocessing['std']}: timm's evaluation transform, "
        "`timm.data.create_transform(**timm.data.resolve_model_data_config(model))`, recorded as "
        "`pretrained_cfg` in `config.json`.",
        "",
        *usage_section(),
        *upload_section(),
        f"Exported from `{record.checkpoint}`.",
        "",
    ]
    return "\n".join(lines)


def write_model_card(
    folder: Path, model: ImageClassifier, checkpoint: str | Path, license: str, tags: Sequence[str] = ()
) -> Path:
    """Write README.md into `folder`, with the run's config and test confusion matrix beside it."""
    record = RunRecord(checkpoint, model.hparams)
    if record.config:
        shutil.copyfile(record.run_dir / "config.yaml", folder / CONFIG_FILE)
    if record.confusion_matrix:
        shutil.copyfile(record.confusion_matrix, folder / CONFUSION_MATRIX)
    path = folder / "README.md"
    path.write_text(model_card(record, model, license, tags))
    return path
