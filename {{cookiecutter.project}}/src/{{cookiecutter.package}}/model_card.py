"""The model card of an exported timm folder (its README.md, as the Hugging Face Hub shows it), built
from what the training run recorded beside the checkpoint: results.json, config.yaml and plots/."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .models import ImageClassifier
from .run.checkpoints import read_checkpoint

# Copied into the folder beside README.md, which links to them.
CONFIG_FILE = "training_config.yaml"
CONFUSION_MATRIX = "test_confusion_matrix.png"
# The test metrics of results.json the card's model-index lists, as the Hub's metric types.
HUB_METRICS = {
    "test/acc": ("accuracy", "Top-1 accuracy", None),
    "test/acc_top3": ("accuracy", "Top-3 accuracy", {"k": 3}),
    "test/acc_top5": ("accuracy", "Top-5 accuracy", {"k": 5}),
    "test/f1_macro": ("f1", "Macro F1", {"average": "macro"}),
}


class RunRecord:
    """What the run that wrote a checkpoint recorded: its results, its config, its pictures. A file
    that is missing (a checkpoint copied away from its run directory) leaves its part empty."""

    def __init__(self, checkpoint: str | Path) -> None:
        self.checkpoint = Path(checkpoint)
        self.run_dir = self.checkpoint.parent.parent
        self.hyperparameters: dict[str, Any] = read_checkpoint("ckpt_path", checkpoint)["hyper_parameters"]
        self.results = _read(self.run_dir / "results.json", json.loads)
        self.config = _read(self.run_dir / "config.yaml", yaml.safe_load)

    @property
    def test_metrics(self) -> dict[str, float]:
        metrics = self.results.get("metrics", {})
        return {name: float(value) for name, value in metrics.items() if name.startswith("test/")}

    @property
    def confusion_matrix(self) -> Path | None:
        path = self.run_dir / "plots" / CONFUSION_MATRIX
        return path if path.is_file() else None


def _read(path: Path, parse) -> dict[str, Any]:
    try:
        return parse(path.read_text()) or {}
    except (OSError, ValueError, yaml.YAMLError):
        return {}


def base_model(hyperparameters: Mapping[str, Any]) -> str | None:
    """The Hub repository of the pretrained weights training started from (None: from scratch, or a
    local weights file the Hub cannot name)."""
    if not hyperparameters.get("pretrained"):
        return None
    import timm

    config = timm.models.get_pretrained_cfg(str(hyperparameters["backbone"]), allow_unregistered=False)
    hub_id = getattr(config, "hf_hub_id", None) if config else None
    return hub_id or f"timm/{hyperparameters['backbone']}"


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


def data_source(config: Mapping[str, Any]) -> str:
    """The data module and where it read from, e.g. `ImageFolderDataModule (root: photos/)`."""
    data = config.get("data") or {}
    module = str(data.get("_target_", "unknown data")).rsplit(".", 1)[-1]
    where = [f"{key}: {data[key]}" for key in ("name", "root", "csv_path") if data.get(key)]
    if module == "DigitsDataModule":
        where.append("the 8x8 UCI handwritten digits bundled with the project")
    return f"{module} ({', '.join(where)})" if where else module


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


def usage_section() -> list[str]:
    """Loading snippets for timm, transformers and onnxruntime; each runs as it stands from this folder
    with a `photo.jpg` beside it (the project's tests run them)."""
    return [
        "## Use",
        "",
        "Each snippet runs from this folder with an image `photo.jpg`; once the folder is on the Hub, use "
        'its repository id instead of `"."` (`"hf-hub:<user>/<repo>"` for timm).',
        "",
        "timm (the preprocessing comes from `config.json`):",
        "",
        "```python",
        "import timm",
        "import torch",
        "from PIL import Image",
        "from timm.data import create_transform, resolve_model_data_config",
        "",
        'model = timm.create_model("local-dir:.", pretrained=True).eval()',
        "transform = create_transform(**resolve_model_data_config(model))",
        "with torch.no_grad():",
        '    probabilities = model(transform(Image.open("photo.jpg").convert("RGB"))[None]).softmax(-1)[0]',
        'print(model.pretrained_cfg["label_names"][int(probabilities.argmax())])',
        "```",
        "",
        "Hugging Face transformers (its `TimmWrapper` classes read the same `config.json`):",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        'classifier = pipeline("image-classification", model=".")',
        'print(classifier("photo.jpg")[0]["label"])  # the top 5, best first: [{"label", "score"}, ...]',
        "```",
        "",
        "onnxruntime, with `model.onnx` from `export.py formats=[onnx]` (the `onnx/` folder beside this one;"
        " copy it here to ship it with the model):",
        "",
        "```python",
        "import json",
        "",
        "import numpy as np",
        "import onnxruntime",
        "from PIL import Image",
        "from timm.data import create_transform",
        "",
        'session = onnxruntime.InferenceSession("../onnx/model.onnx", providers=["CPUExecutionProvider"])',
        "metadata = session.get_modelmeta().custom_metadata_map",
        'preprocessing = json.loads(metadata["preprocessing"])',
        "transform = create_transform(",
        '    input_size=tuple(preprocessing["input_size"]),',
        '    interpolation=preprocessing["interpolation"],',
        '    mean=tuple(preprocessing["mean"]),',
        '    std=tuple(preprocessing["std"]),',
        '    crop_pct=preprocessing["crop_pct"],',
        '    crop_mode=preprocessing["crop_mode"],',
        ")",
        'image = transform(Image.open("photo.jpg").convert("RGB"))[None].numpy()',
        'logits = session.run(["logits"], {"input": image})[0]',
        'print(json.loads(metadata["class_names"])[int(np.argmax(logits))])',
        "```",
        "",
    ]


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
        "## Upload",
        "",
        "With the Hub's command-line tool (`pip install huggingface_hub`), after `hf auth login`:",
        "",
        "```bash",
        "hf upload <user>/<repo> .",
        "```",
        "",
        f"Exported from `{record.checkpoint}`.",
        "",
    ]
    return "\n".join(lines)


def write_model_card(
    folder: Path, model: ImageClassifier, checkpoint: str | Path, license: str, tags: Sequence[str] = ()
) -> Path:
    """Write README.md into `folder`, with the run's config and test confusion matrix beside it."""
    record = RunRecord(checkpoint)
    if record.config:
        shutil.copyfile(record.run_dir / "config.yaml", folder / CONFIG_FILE)
    if record.confusion_matrix:
        shutil.copyfile(record.confusion_matrix, folder / CONFUSION_MATRIX)
    path = folder / "README.md"
    path.write_text(model_card(record, model, license, tags))
    return path
