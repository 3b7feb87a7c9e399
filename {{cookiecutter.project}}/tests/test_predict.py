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

from conftest import FAST, compose_into, read_only_folder, run_script, write_image_folder

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
    assert [skipped["path"] for skipped in results["skipped"]] == [str(folder / "a" / "broken.png")]


def write_file(path: Path, kind: str) -> Path:
    """A file of `kind`: an image in the format its name says, or one that only looks like one."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "image":
        Image.new("RGB", (20, 16), (200, 30, 30)).save(path)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "corrupt":
        path.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    elif kind == "text":
        path.write_text("hello\n")
    return path


@pytest.mark.parametrize(
    ("files", "inputs", "message"),
    [
        ({"zero.jpg": "empty"}, "zero.jpg", "none of its 1 file(s) could be read as an image"),
        ({"bad.png": "corrupt"}, "bad.png", "none of its 1 file(s) could be read as an image"),
        ({"text.png": "text"}, "text.png", "cannot identify image file"),
        ({"notes.txt": "text"}, "notes.txt", "is neither an image (.jpg"),
        ({"only/notes.txt": "text", "only/bad.png": "corrupt"}, "only", "none of its 2 file(s)"),
        ({"list.csv": "path;label\nimg.png;cat\n", "img.png": "image"}, "list.csv", "is not comma-separated"),
        ({"list.csv": "path\nmissing.png\n"}, "list.csv", "missing.png: no such file"),
    ],
    ids=["zero-byte", "corrupt", "text-as-png", "text", "folder-of-nothing", "semicolons", "missing"],
)
def test_nothing_to_predict_is_refused_writing_nothing(
    trained, compose_config, tmp_path, files, inputs, message
):
    for name, kind in files.items():
        if kind in ("image", "empty", "corrupt", "text"):
            write_file(tmp_path / name, kind)
        else:
            (tmp_path / name).write_text(kind)
    output = tmp_path / "out" / "predictions.csv"
    config = predict_config(
        compose_config, trained["checkpoint"], f"inputs={tmp_path / inputs}", f"output={output}"
    )
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        predict(config)
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()


def test_a_folder_and_a_file_named_alone_follow_one_rule_and_every_skipped_file_is_listed(
    trained, compose_config, tmp_path
):
    folder = tmp_path / "photos"
    for name in ("a.png", "b.GIF", "c.jpeg", "sub/d.webp"):
        write_file(folder / name, "image")
    write_file(folder / "notes.txt", "text")
    write_file(folder / ".DS_Store", "text")  # hidden: the file systems', never a user's image
    write_file(folder / ".thumbnails" / "a.png", "image")  # inside a hidden folder: a tool's copy
    os.symlink(tmp_path / "gone.png", folder / "dead.png")
    results = predict(predict_config(compose_config, trained["checkpoint"], f"inputs={folder}"))
    predicted = [row["path"] for row in read_csv(Path(results["predictions"]))]
    assert predicted == [str(folder / name) for name in ("a.png", "b.GIF", "c.jpeg", "sub/d.webp")]
    assert {Path(s["path"]).name: s["reason"] for s in results["skipped"]} == {
        "dead.png": "broken link",
        "notes.txt": "not an image file",
    }
    for name in predicted:  # each alone, as predict.py is given a single file
        overrides = [f"ckpt_path={trained['checkpoint']}", f"inputs={name}"]
        assert predict(compose_into("predict", overrides, tmp_path / Path(name).stem))["images"] == 1


def test_empty_inputs_are_refused_not_read_as_the_current_folder(trained, compose_config, tmp_path):
    with pytest.raises(ConfigurationError, match="inputs is empty"):
        predict(predict_config(compose_config, trained["checkpoint"], "inputs=''"))
    assert not (tmp_path / "run").exists()


def test_one_image_is_one_image_in_the_summary(trained, compose_config, tmp_path, capsys):
    image = write_file(tmp_path / "one.png", "image")
    predict(predict_config(compose_config, trained["checkpoint"], f"inputs={image}"))
    assert "Predicted 1 image with" in capsys.readouterr().out


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


def test_an_output_that_cannot_be_written_is_refused_before_predicting(trained, compose_config, caplog):
    output = read_only_folder() / "sub" / "predictions.csv"
    config = predict_config(
        compose_config, trained["checkpoint"], f"inputs={trained['root'] / 'test'}", f"output={output}"
    )
    with pytest.raises(ConfigurationError, match=re.escape(f"output={str(output)!r} cannot be written: ")):
        predict(config)
    assert "Restoring states" not in caplog.text and not Path(config.paths.output_dir).exists()
