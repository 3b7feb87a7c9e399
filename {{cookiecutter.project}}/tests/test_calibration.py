"""Calibration: the ECE and reliability diagram of every test, and temperature scaling fitted on the
validation split, folded into the best checkpoint and so carried by eval, predict and the exports."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import timm
import torch
from PIL import Image

from {{ cookiecutter.package }}.data.transforms import build_transform
from {{ cookiecutter.package }}.errors import ConfigurationError
from {{ cookiecutter.package }}.evaluation import evaluate
from {{ cookiecutter.package }}.exporting import export
from {{ cookiecutter.package }}.models.calibration import (
    expected_calibration_error,
    fit_temperature,
    fold_temperature,
)
from {{ cookiecutter.package }}.prediction import predict
from {{ cookiecutter.package }}.run.calibration import predicted_logits
from {{ cookiecutter.package }}.run.checkpoints import load_classifier
from {{ cookiecutter.package }}.training import build_datamodule_and_model, train

from conftest import FAST, compose_into, write_image_folder


def test_the_fitted_temperature_is_the_one_that_made_the_logits_overconfident():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4000, 5, generator=generator) * 2
    targets = torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)  # calibrated
    assert fit_temperature(logits * 3, targets) == pytest.approx(3.0, rel=0.1)
    assert expected_calibration_error(logits, targets) < 0.03
    assert expected_calibration_error(logits * 3, targets) > 0.1


def test_folding_the_temperature_divides_the_networks_logits_exactly():
    network = timm.create_model("test_resnet", num_classes=4).eval()
    torch.nn.init.normal_(network.get_classifier().bias)  # timm starts it at 0
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        before = network(images)
        fold_temperature(network, 2.5)
        assert torch.allclose(network(images), before / 2.5, atol=1e-5)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> dict:
    """A run with temperature scaling, its config, and its best checkpoint loaded."""
    root = tmp_path_factory.mktemp("calibrated")
    config = compose_into("train", [*FAST, "temperature_scaling=true"], root / "run")
    results = train(config)
    return {"root": root, "config": config, "results": results}


def test_every_test_reports_the_ece_and_draws_a_reliability_diagram(calibrated):
    results = calibrated["results"]
    assert 0 <= results["metrics"]["test/ece"] <= 1
    assert results["calibration"]["test_ece"] == pytest.approx(results["metrics"]["test/ece"])
    picture = Path(results["output_dir"]) / "plots" / "test_reliability.png"
    assert Image.open(picture).size == (500, 560)


def test_the_temperature_is_fitted_on_validation_and_folded_into_the_best_checkpoint(calibrated):
    calibration = calibrated["results"]["calibration"]
    assert calibration["temperature"] != pytest.approx(1.0, abs=0.05)
    assert calibration["val_ece_after"] < calibration["val_ece_before"]
    assert calibration["val_loss_after"] < calibration["val_loss_before"]
    # The checkpoint's own weights now give the scaled logits: their validation ECE is the one after.
    model = load_classifier(calibrated["results"]["best_checkpoint"])
    datamodule, _ = build_datamodule_and_model(calibrated["config"])
    datamodule.use_preprocessing(model.preprocessing)
    datamodule.setup("validate")
    logits, targets = predicted_logits(model, torch.utils.data.DataLoader(datamodule.datasets["val"], 64))
    after = calibration["val_ece_after"]
    assert expected_calibration_error(logits, targets) == pytest.approx(after, abs=1e-4)
    assert model.calibration == {key: calibration[key] for key in model.calibration}


def test_eval_reports_the_same_scaled_and_unscaled_ece_as_the_training_run(calibrated, tmp_path):
    checkpoint = calibrated["results"]["best_checkpoint"]
    overrides = [f"ckpt_path={checkpoint}", "+trainer.limit_test_batches=2"]  # as the FAST run tested
    results = evaluate(compose_into("eval", overrides, tmp_path / "eval"))
    trained = calibrated["results"]["calibration"]
    for key in ("test_ece", "test_ece_unscaled", "temperature"):
        assert results["calibration"][key] == pytest.approx(trained[key], abs=1e-5), key


def test_predict_the_onnx_export_and_the_checkpoint_give_the_same_scaled_probabilities(calibrated, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime

    checkpoint = calibrated["results"]["best_checkpoint"]
    model = load_classifier(checkpoint).eval()
    folder = write_image_folder(tmp_path / "images", {"x": 5}, size=(20, 16))
    paths = sorted((folder / "x").iterdir())
    transform = build_transform(model.preprocessing, False)
    images = torch.stack([transform(Image.open(path).convert("RGB")) for path in paths])
    with torch.no_grad():
        expected = model(images).softmax(-1)
    assert not torch.allclose(expected, (expected.log() * model.calibration["temperature"]).softmax(-1))

    overrides = [f"ckpt_path={checkpoint}", f"inputs={folder}", "top_k=10"]
    predictions = predict(compose_into("predict", overrides, tmp_path / "predict"))
    with Path(predictions["predictions"]).open() as file:
        rows = {row["path"]: row for row in csv.DictReader(file)}
    for path, probabilities in zip(paths, expected, strict=True):
        row = rows[str(path)]
        predicted = {row[f"label_{i}"]: float(row[f"prob_{i}"]) for i in range(1, 11)}
        in_class_order = [predicted[name] for name in model.class_names]
        assert in_class_order == pytest.approx(probabilities.tolist(), abs=1e-5)

    overrides = [f"ckpt_path={checkpoint}", "formats=[onnx]", f"output_dir={tmp_path / 'exported'}"]
    export(compose_into("export", overrides, tmp_path / "export"))
    onnx_file = str(tmp_path / "exported" / "onnx" / "model.onnx")
    session = onnxruntime.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    onnx_logits = torch.from_numpy(session.run(["logits"], {"input": images.numpy()})[0])
    assert torch.allclose(onnx_logits.softmax(-1), expected, atol=1e-5)


@pytest.mark.parametrize(("value", "shown"), [("maybe", "'maybe'"), ("2", "2")])
def test_a_temperature_scaling_that_is_not_a_boolean_is_refused_before_anything_is_written(
    compose_config, tmp_path, value, shown
):
    with pytest.raises(ConfigurationError, match=f"temperature_scaling={shown} is not a boolean"):
        train(compose_config([*FAST, f"temperature_scaling={value}"]))
    assert not (tmp_path / "run").exists()
