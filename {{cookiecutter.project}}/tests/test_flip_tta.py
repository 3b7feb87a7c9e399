"""eval.py flip_tta=true: the test metrics of the probabilities averaged with the mirrored images', beside
the plain ones, equal to what predict.py's flip_tta computes for the same images."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from {{ cookiecutter.package }}.errors import ConfigurationError
from {{ cookiecutter.package }}.evaluation import evaluate
from {{ cookiecutter.package }}.models import class_probabilities
from {{ cookiecutter.package }}.run.checkpoints import load_classifier
from {{ cookiecutter.package }}.training import build_datamodule_and_model, train

from conftest import FAST, compose_into


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("tta")
    return train(compose_into("train", [*FAST, "test=false"], root / "run"))["best_checkpoint"]


def test_eval_reports_flip_tta_beside_the_plain_result_as_predict_computes_it(checkpoint, tmp_path):
    config = compose_into("eval", [f"ckpt_path={checkpoint}", "flip_tta=true"], tmp_path / "eval")
    metrics = evaluate(config)["metrics"]
    assert {"test/acc", "test/loss", "test/acc_flip_tta", "test/loss_flip_tta"} <= set(metrics)

    model = load_classifier(checkpoint).eval()
    datamodule, _ = build_datamodule_and_model(compose_into("train", FAST, tmp_path / "unused"))
    datamodule.use_preprocessing(model.preprocessing)
    datamodule.setup("test")
    probabilities, targets = [], []
    with torch.no_grad():
        for images, labels in datamodule.test_dataloader():
            probabilities.append(class_probabilities(model, images, flip=True))
            targets.append(labels)
    probabilities, targets = torch.cat(probabilities), torch.cat(targets)
    accuracy = (probabilities.argmax(-1) == targets).float().mean().item()
    loss = F.nll_loss(probabilities.log(), targets).item()
    assert metrics["test/acc_flip_tta"] == pytest.approx(accuracy, abs=1e-6)
    assert metrics["test/loss_flip_tta"] == pytest.approx(loss, rel=1e-4)
    assert metrics["test/loss_flip_tta"] != pytest.approx(metrics["test/loss"], rel=1e-4)


def test_eval_without_flip_tta_reports_only_the_plain_result(checkpoint, tmp_path):
    metrics = evaluate(compose_into("eval", [f"ckpt_path={checkpoint}"], tmp_path / "eval"))["metrics"]
    assert "test/acc" in metrics and "test/acc_flip_tta" not in metrics


def test_a_flip_tta_that_is_not_a_boolean_is_refused_before_anything_is_written(checkpoint, tmp_path):
    config = compose_into("eval", [f"ckpt_path={checkpoint}", "flip_tta=maybe"], tmp_path / "eval")
    with pytest.raises(ConfigurationError, match="flip_tta='maybe' is not a boolean"):
        evaluate(config)
    assert not (tmp_path / "eval").exists()
