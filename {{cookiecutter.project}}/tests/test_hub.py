"""The timm export as a Hugging Face model: transformers and timm load it and label images as
predict.py does; its model card reads as the Hub reads it, and the code in it runs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from {{ cookiecutter.package }}.exporting import export
from {{ cookiecutter.package }}.prediction import predict
from {{ cookiecutter.package }}.training import train

from conftest import FAST, compose_into, write_image_folder

pytest.importorskip("transformers")
# How far transformers' and timm's probabilities may be from predict.py's.
TOLERANCE = 1e-4
IMAGES = 100

# Run in a fresh interpreter that never imports this project, as a user's own script: every image
# through transformers' pipeline, through AutoModelForImageClassification + AutoImageProcessor, and
# through timm; the probabilities of every class, by label.
LOAD_WITH_HUGGING_FACE = """
import json, sys
import timm, torch
from PIL import Image
from timm.data import create_transform, resolve_model_data_config
from transformers import AutoImageProcessor, AutoModelForImageClassification, pipeline

folder, paths = sys.argv[1], json.loads(open(sys.argv[2]).read())
classifier = pipeline("image-classification", model=folder)
labels = classifier.model.config.id2label
by_pipeline = [{p["label"]: p["score"] for p in top} for top in classifier(paths, top_k=len(labels))]
processor = AutoImageProcessor.from_pretrained(folder)
model = AutoModelForImageClassification.from_pretrained(folder).eval()
images = [Image.open(path).convert("RGB") for path in paths]
with torch.no_grad():
    probabilities = model(**processor(images=images, return_tensors="pt")).logits.softmax(-1)
by_auto_model = [{labels[i]: float(p) for i, p in enumerate(row)} for row in probabilities]
plain = timm.create_model("local-dir:" + folder, pretrained=True).eval()
transform = create_transform(**resolve_model_data_config(plain))
with torch.no_grad():
    probabilities = plain(torch.stack([transform(image) for image in images])).softmax(-1)
names = plain.pretrained_cfg["label_names"]
by_timm = [{names[i]: float(p) for i, p in enumerate(row)} for row in probabilities]
assert not any(name.startswith("{{ cookiecutter.package }}") for name in sys.modules)
print(json.dumps({"pipeline": by_pipeline, "auto_model": by_auto_model, "timm": by_timm}))
"""


def run_python(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600, cwd=cwd
    )


def write_varied_images(folder: Path, count: int) -> list[Path]:
    """RGB images of many sizes and aspect ratios (taller, wider, smaller and larger than the input)."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        width, height = (int(v) for v in rng.integers(9, 90, size=2))
        path = folder / f"image_{index:03d}.png"
        # Smooth gradients plus noise: images a resize changes, so interpolation differences show.
        base = np.linspace(0, 255, width)[None, :, None] * rng.random(3)
        noise = rng.integers(0, 80, (height, width, 3))
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def exported_model(root: Path, train_overrides: list[str]) -> dict:
    """Train, export (timm and onnx), and label IMAGES images with predict.py (every class's score)."""
    results = train(compose_into("train", [*FAST, *train_overrides], root / "train"))
    checkpoint = results["best_checkpoint"]
    overrides = [f"ckpt_path={checkpoint}", "formats=[timm,onnx]", f"output_dir={root}/export"]
    export(compose_into("export", overrides, root / "e"))
    images = write_varied_images(root / "photos", IMAGES)
    predictions = predict(
        compose_into(
            "predict",
            [f"ckpt_path={checkpoint}", f"inputs={root / 'photos'}", f"output={root}/p.jsonl", "top_k=1000"],
            root / "p",
        )
    )
    lines = [json.loads(line) for line in Path(predictions["predictions"]).read_text().splitlines()]
    by_path = {line["path"]: {p["label"]: p["score"] for p in line["predictions"]} for line in lines}
    return {
        "root": root,
        "folder": root / "export" / "timm",
        "images": images,
        "predict": [by_path[str(path)] for path in images],
        "train": results,
    }


@pytest.fixture(scope="module")
def digits_export(tmp_path_factory) -> dict:
    """From scratch on the digits at 32 px: not test_resnet's native 160 px; its mean/std is 0.5, not
    ImageNet's."""
    return exported_model(tmp_path_factory.mktemp("hub"), [])


def loaded_with_hugging_face(exported: dict) -> dict:
    root = exported["root"]
    (root / "paths.json").write_text(json.dumps([str(path) for path in exported["images"]]))
    result = run_python(LOAD_WITH_HUGGING_FACE, str(exported["folder"]), str(root / "paths.json"))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def assert_same_as_predict(exported: dict, loaded: dict) -> None:
    expected = exported["predict"]
    for loader, predictions in loaded.items():
        assert len(predictions) == len(expected) >= IMAGES
        for path, ours, theirs in zip(exported["images"], expected, predictions, strict=True):
            assert ours.keys() == theirs.keys(), loader  # every class, under the project's names
            worst = max(abs(ours[label] - theirs[label]) for label in ours)
            assert worst < TOLERANCE, f"{loader} on {path.name}: probabilities differ by {worst:.2e}"
            assert max(ours, key=ours.get) == max(theirs, key=theirs.get), f"{loader} on {path.name}"


def test_transformers_and_timm_label_100_images_as_predict_does(digits_export):
    assert_same_as_predict(digits_export, loaded_with_hugging_face(digits_export))


@pytest.mark.slow
def test_a_backbone_with_its_own_mean_std_and_crop_labels_as_predict_does(tmp_path):
    # test_efficientnet at 48 px (native 160) with explicit mean/std, bicubic and a centre crop, on
    # an image folder: every preprocessing value differs from the digits run's.
    data = tmp_path / "data"
    write_image_folder(data, {"ant": 8, "bee": 8, "cat": 8}, size=(30, 20))
    exported = exported_model(
        tmp_path,
        [
            "model.backbone=test_efficientnet",
            "data=image_folder",
            f"data.root={data}",
            "data.batch_size=4",
            "data.image_size=48",
            "data.mean=[0.3,0.4,0.5]",
            "data.std=[0.2,0.25,0.3]",
            "data.interpolation=bicubic",
            "data.crop_pct=0.8",
        ],
    )
    config = json.loads((exported["folder"] / "config.json").read_text())
    assert config["pretrained_cfg"]["mean"] == pytest.approx([0.3, 0.4, 0.5])
    assert_same_as_predict(exported, loaded_with_hugging_face(exported))


def test_the_model_card_front_matter_reads_as_the_hub_reads_it(digits_export):
    from huggingface_hub import ModelCard

    card = ModelCard.load(digits_export["folder"] / "README.md")
    data = card.data
    assert data.library_name == "timm"
    assert data.pipeline_tag == "image-classification"
    assert data.license == "mit"
    assert "test_resnet" in data.tags
    assert data.base_model is None  # trained from scratch: no base model to name
    results = {result.metric_name: result for result in data.eval_results}
    test_acc = digits_export["train"]["metrics"]["test/acc"]
    assert results["Top-1 accuracy"].metric_value == pytest.approx(test_acc, abs=1e-4)
    assert results["Top-1 accuracy"].dataset_split == "test"
    assert results["Macro F1"].metric_type == "f1"


def test_the_model_card_describes_the_run_and_carries_its_files(digits_export):
    folder, results = digits_export["folder"], digits_export["train"]
    card = (folder / "README.md").read_text()
    sizes = results["split_sizes"]
    assert f"train {sizes['train']}, val {sizes['val']}, test {sizes['test']}" in card
    assert f"epochs: {results['epochs']}" in card and "seed: 42" in card
    assert "optimizer: opt adamw" in card and "schedule: sched cosine" in card
    per_class = results["test_per_class"]["classes"]["3"]
    assert f"| 3 | {per_class['precision']:.4f} | {per_class['recall']:.4f} | {per_class['f1']:.4f} |" in card
    assert (folder / "test_confusion_matrix.png").read_bytes() == (
        Path(results["output_dir"]) / "plots" / "test_confusion_matrix.png"
    ).read_bytes()
    assert "](test_confusion_matrix.png)" in card
    import yaml

    assert yaml.safe_load((folder / "training_config.yaml").read_text())["model"]["backbone"] == "test_resnet"


@pytest.mark.slow
def test_the_code_in_the_model_card_runs_and_gives_predicts_label(digits_export, tmp_path):
    # The card's snippets run from the timm folder with a photo.jpg beside it (onnx/ is its neighbour).
    export_copy = tmp_path / "export"
    shutil.copytree(digits_export["folder"].parent, export_copy)
    folder = export_copy / "timm"
    Image.open(digits_export["images"][0]).convert("RGB").save(folder / "photo.jpg", quality=100)
    snippets = re.findall(r"```python\n(.*?)```", (folder / "README.md").read_text(), flags=re.DOTALL)
    assert len(snippets) == 3  # timm, transformers, onnxruntime
    printed = []
    for snippet in snippets:
        result = run_python(snippet, cwd=folder)
        assert result.returncode == 0, snippet + result.stderr[-3000:]
        printed.append(result.stdout.strip().splitlines()[-1])
    # predict.py on the same JPEG: a JPEG is not the PNG it came from.
    expected = predict(
        compose_into(
            "predict",
            [f"ckpt_path={digits_export['train']['best_checkpoint']}", f"inputs={folder / 'photo.jpg'}"],
            tmp_path / "p",
        )
    )
    top1 = Path(expected["predictions"]).read_text().splitlines()[1].split(",")[1]
    assert printed == [top1] * 3
