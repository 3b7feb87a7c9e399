"""Class imbalance: class-weighted and focal training losses, weights counted from the training split and
saved with the model, plain cross-entropy for validation, and bad settings refused before any work."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from {{ cookiecutter.package }}.errors import ConfigurationError
from {{ cookiecutter.package }}.models import ImageClassifier
from {{ cookiecutter.package }}.models.losses import TrainingLoss
from {{ cookiecutter.package }}.training import build_datamodule_and_model, train

from conftest import FAST, PROJECT_ROOT


def test_focal_loss_is_the_textbook_formula_and_smaller_on_easy_images():
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.2, 0.1, 0.0]])
    targets = torch.tensor([0, 0])
    probability = F.softmax(logits, dim=-1)[:, 0]
    textbook = -((1 - probability) ** 2) * probability.log()  # Lin et al. 2017, gamma 2
    focal = TrainingLoss("focal", gamma=2.0)(logits, targets)
    assert torch.allclose(focal, textbook)
    cross_entropy = TrainingLoss()(logits, targets)
    # The easy image (p = 0.96) loses far more of its loss than the hard one.
    assert focal[0] / cross_entropy[0] < 0.01 < 0.3 < focal[1] / cross_entropy[1]


def test_class_weights_scale_each_images_loss_by_the_weight_of_its_class_with_hard_or_soft_targets():
    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([0, 1, 2, 0, 1, 2])
    weights = torch.tensor([1.0, 3.0, 0.5])
    plain = F.cross_entropy(logits, targets, reduction="none")
    for loss in ("cross_entropy", "focal"):
        gamma = 0.0 if loss == "cross_entropy" else 1.5
        weighted = TrainingLoss(loss, gamma, weights.tolist())
        unweighted = TrainingLoss(loss, gamma)
        assert torch.allclose(weighted(logits, targets), weights[targets] * unweighted(logits, targets))
        # Mixup hands the loss class probabilities: one-hot ones give the same losses as the labels.
        one_hot = F.one_hot(targets, 3).float()
        assert torch.allclose(weighted(logits, one_hot), weighted(logits, targets))
    assert torch.allclose(TrainingLoss()(logits, targets), plain)


def test_focal_loss_with_label_smoothing_smooths_the_targets_like_cross_entropy_does():
    logits = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 1, 2, 3])
    # At gamma -> 0 the focal formula is cross-entropy; torch's smoothing is the reference.
    nearly_cross_entropy = TrainingLoss("focal", gamma=1e-9, label_smoothing=0.1)(logits, targets)
    smoothed = F.cross_entropy(logits, targets, label_smoothing=0.1, reduction="none")
    assert torch.allclose(nearly_cross_entropy, smoothed, atol=1e-6)


def test_validation_and_test_losses_are_plain_cross_entropy_whatever_the_training_loss():
    model = ImageClassifier(
        "test_resnet", ["a", "b", "c"], loss="focal", class_weights=[1.0, 9.0, 0.1], label_smoothing=0.2
    )
    images, targets = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 1])
    model.eval()
    with torch.no_grad():
        logits = model(images)
        plain = F.cross_entropy(logits, targets)
        for stage in ("val", "test"):
            model._step((images, targets), stage)
            assert torch.isclose(getattr(model, f"{stage}_loss").compute(), plain)
        assert not torch.isclose(model._step((images, targets), "train")[0], plain)


def test_auto_class_weights_are_counted_from_the_training_split_and_saved_with_the_model(
    compose_config, tmp_path
):
    config = compose_config(
        [*FAST, "model.class_weights=auto", "data.classes=[0,1,2]", "trainer.max_epochs=1", "test=false"]
    )
    datamodule, _ = build_datamodule_and_model(config)
    counts = np.bincount(datamodule.training_labels(), minlength=3)
    expected = counts.sum() / (3 * counts)  # each class adds the same total weight
    results = train(config)
    saved = torch.load(results["last_checkpoint"], weights_only=True)["hyper_parameters"]["class_weights"]
    assert saved == pytest.approx(expected.tolist())
    loaded = ImageClassifier.load_from_checkpoint(results["last_checkpoint"], weights_only=True)
    assert loaded.criterion.class_weights.tolist() == pytest.approx(expected.tolist())


BAD_SETTINGS = [
    (["model.class_weights=[1,2]"], "model.class_weights has 2 weights, the data has 10 classes"),
    (["model.class_weights=[-1,1,1,1,1,1,1,1,1,1]"], "must be at least 0 and not all 0"),
    (["model.class_weights=[0,0,0,0,0,0,0,0,0,0]"], "must be at least 0 and not all 0"),
    (["model.class_weights=balanced"], "model.class_weights='balanced' is not a list of numbers"),
    (["model.class_weights=3"], "model.class_weights=3 is not a list of numbers"),
    (["model.class_weights=[a,1,1,1,1,1,1,1,1,1]"], "is not a list of numbers; use null, auto or"),
    (["model.class_weights=[true,1,1,1,1,1,1,1,1,1]"], "is not a list of numbers"),
    (["model.loss=focall"], "model.loss='focall' is not a loss we have; use cross_entropy or focal"),
    (["model.gamma=-1"], "model.gamma=-1 must be at least 0; set e.g. model.gamma=2.0"),
    (["model.gamma=abc"], "model.gamma='abc' is not a number"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_SETTINGS, ids=lambda v: str(v)[:40])
def test_bad_imbalance_settings_are_refused_before_anything_is_written(
    compose_config, tmp_path, overrides, message
):
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        train(compose_config([*FAST, *overrides]))
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_auto_class_weights_raise_the_rare_classes_recall_over_no_weights(tmp_path):
    spec = importlib.util.spec_from_file_location("imbalance", PROJECT_ROOT / "benchmarks" / "imbalance.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    benchmark.write_imbalanced_digits(tmp_path / "digits")
    (tmp_path / "runs").mkdir()
    recall = {
        remedy: benchmark.rare_recall(
            benchmark.train(
                tmp_path / "digits", benchmark.REMEDIES[remedy], 1, 10, "resnet10t", tmp_path / "runs"
            ),
            benchmark.RARE,
        )
        for remedy in ("none", "class_weights")
    }
    # Seed 1 on a CPU: 0.887 -> 0.970. Not every seed gains (README: seed 2 lost 0.02), so this is one
    # fixed run, the benchmark's first, not a claim about every seed.
    assert recall["class_weights"] > recall["none"] + 0.05, recall
