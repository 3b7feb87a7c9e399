"""predict.py: new images labelled by a checkpoint as eval scores them, as CSV or JSON Lines."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import pytest
import torch

from {{ cookiecutter.package }}.errors import ConfigurationError
from {{ cookiecutter.package }}.hydra_compat import VERSION_BASE
from {{ cookiecutter.package }}.prediction import predict
from {{ cookiecutter.package }}.run.checkpoints import load_classifier
from {{ cookiecutter.package }}.training import build_datamodule_and_model, train

from conftest import FAST, run_script, write_image_folder

CLASSES = {"cat": 6, "dog": 6, "fox": 6}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A checkpoint trained on an image folder with its own test split, and that split's images."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from conftest import CONFIG_DIR

    root = tmp_path_factory.mktemp("folder") / "images"
    for split in ("train", "val", "test"):
        write_image_folder(root / split, CLASSES, size=(20, 16))
    overrides = [*FAST, "data=image_folder", f"data.root={root}", "data.image_size=32", "data.batch_size=4"]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), **VERSION_BASE):
        config = compose("train", overrides)
    with open_dict(config):
        config.paths.output_dir = str(root.parent / "run")
    results = train(config)
    datamodule, _ = build_datamodule_and_model(config)
    return {"checkpoint": results["best_checkpoint"], "root": root, "datamodule": datamodule}


def predict_config(compose_config, checkpoint: str, *overrides: str):
    return compose_config([f"ckpt_path={checkpoint}", *overrides], "predict")


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


def test_top1_of_a_folder_equals_what_eval_scores_on_the_test_split(trained, compose_config, tmp_path):
    results = predict(
        predict_config(compose_config, trained["checkpoint"], f"inputs={trained['root'] / 'test'}")
    )
    rows = read_csv(Path(results["predictions"]))
    assert list(rows[0]) == [
        "path",
        "label_1",
        "label_2",
        "label_3",
        "prob_1",
        "prob_2",
        "prob_3",
    ]  # k = 3 classes
    assert len(rows) == results["images"] == 18

    # What eval scores: the checkpoint's argmax over the test split's loader, the same images.
    model = load_classifier(trained["checkpoint"]).eval()
    datamodule = trained["datamodule"]
    datamodule.use_preprocessing(model.preprocessing)
    datamodule.setup("test")
    expected = {}
    with torch.no_grad():
        paths = iter(datamodule.datasets["test"].paths)
        for images, _ in datamodule.test_dataloader():
            for predicted in model(images).argmax(-1).tolist():
                expected[str(next(paths))] = model.class_names[predicted]
    assert {row["path"]: row["label_1"] for row in rows} == expected
    for row in rows:  # probabilities of the top-k, best first
        probabilities = [float(row[f"prob_{i}"]) for i in (1, 2, 3)]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)


def test_json_lines_in_the_pipeline_shape_from_a_csv_list_with_flip_tta(trained, compose_config, tmp_path):
    images = sorted((trained["root"] / "test" / "cat").iterdir())[:3]
    listing = tmp_path / "list.csv"  # paths relative to the CSV's folder
    listing.write_text("path,note\n" + "".join(f"{os.path.relpath(path, tmp_path)},x\n" for path in images))
    output = tmp_path / "out" / "predictions.jsonl"
    overrides = [f"inputs={listing}", f"output={output}", "top_k=2", "flip_tta=true"]
    predict(predict_config(compose_config, trained["checkpoint"], *overrides))
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["path"] for line in lines] == [str(path) for path in images]
    for line in lines:
        assert [set(p) for p in line["predictions"]] == [{"label", "score"}] * 2
        assert line["predictions"][0]["score"] >= line["predictions"][1]["score"]


def test_unreadable_files_are_skipped_and_listed(trained, compose_config, tmp_path):
    folder = tmp_path / "mixed"
    write_image_folder(folder, {"a": 2}, size=(20, 16))
    (folder / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    results = predict(predict_config(compose_config, trained["checkpoint"], f"inputs={folder}"))
    assert results["images"] == 2
    assert results["unreadable"] == [str(folder / "a" / "broken.png")]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["inputs=/no/such/folder"], "no such file or folder"),
        (["inputs=."], None),  # replaced below by an empty folder
        (["output=predictions.parquet"], "use .csv or .jsonl"),
        (["top_k=0"], "top_k=0"),
    ],
)
def test_bad_predict_settings_name_the_value(trained, compose_config, tmp_path, overrides, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    if overrides == ["inputs=."]:
        overrides, message = [f"inputs={empty}"], "holds no image files"
    defaults = [f"inputs={trained['root'] / 'test'}"]
    config = predict_config(compose_config, trained["checkpoint"], *defaults, *overrides)
    with pytest.raises(ConfigurationError, match=message):
        predict(config)


def test_an_existing_output_file_is_never_overwritten(trained, compose_config, tmp_path):
    output = tmp_path / "mine.csv"
    output.write_text("keep me\n")
    config = predict_config(
        compose_config, trained["checkpoint"], f"inputs={trained['root'] / 'test'}", f"output={output}"
    )
    with pytest.raises(ConfigurationError, match="exists already"):
        predict(config)
    assert output.read_text() == "keep me\n"
    # Nor is a file taken for a folder.
    config = predict_config(
        compose_config,
        trained["checkpoint"],
        f"inputs={trained['root'] / 'test'}",
        f"output={output / 'predictions.csv'}",
    )
    with pytest.raises(ConfigurationError, match=re.escape(f"{str(output)!r} is a file, not a folder")):
        predict(config)
    assert output.read_text() == "keep me\n"


def test_predict_from_the_command_line(trained, tmp_path):
    result = run_script(
        "predict.py",
        f"ckpt_path={trained['checkpoint']}",
        f"inputs={trained['root'] / 'test' / 'dog'}",
        "hydra.run.dir=run",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Predicted 6 images" in result.stdout
    assert len(read_csv(tmp_path / "run" / "predictions.csv")) == 6
