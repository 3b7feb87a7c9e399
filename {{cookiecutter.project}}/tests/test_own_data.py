"""A user's own image folder from the command line: train, evaluate, and the data report."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from {{ cookiecutter.package }}.errors import ConfigurationError
from {{ cookiecutter.package }}.evaluation import evaluate

from conftest import FAST, read_results, run_script, write_image_folder

SMALL = ["data.image_size=16", "data.batch_size=4"]


def test_train_on_an_image_folder_keeps_its_class_names_for_eval(tmp_path, compose_config):
    root = write_image_folder(tmp_path / "flowers", {"daisy": 10, "rose": 10, "tulip": 10})
    (root / "rose" / "broken.jpg").write_text("not a jpeg")
    trained = run_script("train.py", "data=image_folder", f"data.root={root}", *SMALL, *FAST, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    [results] = read_results(tmp_path / "logs" / "train")
    assert "test/acc" in results["metrics"]
    assert "daisy" in trained.stdout and "Images per class" in trained.stdout
    assert (tmp_path / results["output_dir"] / "bad_files.txt").read_text().startswith(str(root / "rose"))
    checkpoint = torch.load(results["best_checkpoint"], weights_only=True)
    assert checkpoint["hyper_parameters"]["class_names"] == ["daisy", "rose", "tulip"]

    # eval rebuilds the data from config; the checkpoint's classes must match it.
    evaluation = evaluate(
        compose_config(
            ["data=image_folder", f"data.root={root}", f"ckpt_path={results['best_checkpoint']}"], "eval"
        )
    )
    assert "test/acc" in evaluation["metrics"]
    other = write_image_folder(tmp_path / "pets", {"cat": 10, "dog": 10})
    config = compose_config(
        ["data=image_folder", f"data.root={other}", f"ckpt_path={results['best_checkpoint']}"], "eval"
    )
    config.paths.output_dir = str(tmp_path / "eval_on_pets")
    with pytest.raises(ConfigurationError, match=r"trained on classes \['daisy', 'rose', 'tulip'\]"):
        evaluate(config)


def test_a_missing_data_root_is_a_one_line_error(tmp_path):
    result = run_script(
        "train.py", "data=image_folder", f"data.root={tmp_path / 'nowhere'}", *FAST, cwd=tmp_path
    )
    assert result.returncode == 1
    assert "Error: data.root=" in result.stderr and "is not a folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_data_report_prints_counts_and_sizes_and_saves_a_sample_grid(tmp_path):
    root = write_image_folder(tmp_path / "images", {"ant": 6, "bee": 9}, size=(30, 20))
    result = run_script(
        "report.py", "data=image_folder", f"data.root={root}", "data.image_size=24", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "Images per class" in result.stdout and "bee" in result.stdout and "Image sizes" in result.stdout
    [grid_path] = (tmp_path / "logs" / "report" / "runs").glob("*/samples.png")
    assert json.loads((grid_path.parent / "results.json").read_text())["input_size"] == [3, 24, 24]
    assert str(grid_path) in result.stdout
    with Image.open(grid_path) as grid:
        assert grid.height == 2 * (96 + 2)  # one row per class, tiles enlarged to 96 px


def test_data_report_resolves_the_input_size_as_training_does(compose_config, tmp_path):
    from {{ cookiecutter.package }}.reporting import datamodule_as_trained
    from {{ cookiecutter.package }}.training import build_datamodule_and_model

    # data.image_size=null: from scratch, a backbone that takes any size follows the data (32 px
    # images), not the backbone's native 160 px.
    root = write_image_folder(tmp_path / "images", {"ant": 6, "bee": 9}, size=(32, 32))
    config = compose_config(["model.backbone=test_resnet", "data=image_folder", f"data.root={root}"])
    trained, _ = build_datamodule_and_model(config)
    assert trained.preprocessing["input_size"] == [3, 32, 32]
    assert datamodule_as_trained(config).preprocessing == trained.preprocessing
