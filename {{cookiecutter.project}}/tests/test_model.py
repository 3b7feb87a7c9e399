"""The model: timm names checked with suggestions, weights loaded as asked, optimisation as configured."""

from __future__ import annotations

import itertools

import pytest
import timm
import torch

from {{ cookiecutter.package }}.errors import ConfigurationError
from {{ cookiecutter.package }}.finetune import parameter_groups
from {{ cookiecutter.package }}.models import ImageClassifier, create_network
from {{ cookiecutter.package }}.optim import build_optimizer, build_scheduler


def test_unknown_backbone_is_named_with_close_timm_names():
    with pytest.raises(ConfigurationError) as error:
        create_network("convnext_atoo", num_classes=10)
    assert "Unknown backbone 'convnext_atoo'" in str(error.value)
    assert "'convnext_atto'" in str(error.value)


def test_local_weights_file_loads_every_tensor_but_the_classifier(tmp_path):
    source = timm.create_model("test_resnet", num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "weights.pth")
    model = create_network("test_resnet", num_classes=10, weights=str(tmp_path / "weights.pth"))
    loaded, original = model.state_dict(), source.state_dict()
    classifier = model.pretrained_cfg["classifier"]
    for name, tensor in loaded.items():
        if name.startswith(classifier):
            assert tensor.shape[0] == 10
        else:
            assert torch.equal(tensor, original[name]), name


def test_missing_weights_file_is_named():
    with pytest.raises(ConfigurationError, match="no such file"):
        create_network("test_resnet", num_classes=10, weights="/nonexistent/weights.pth")


def test_norm_and_bias_parameters_get_no_weight_decay():
    model = timm.create_model("test_resnet", num_classes=10)
    optimizer = build_optimizer(
        parameter_groups(model, weight_decay=0.05), opt="adamw", lr=1e-3, weight_decay=0.05
    )
    names = {id(p): name for name, p in model.named_parameters()}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            is_norm_or_bias = parameter.ndim <= 1
            assert group["weight_decay"] == (0.0 if is_norm_or_bias else 0.05), names[id(parameter)]
    assert {group["weight_decay"] for group in optimizer.param_groups} == {0.0, 0.05}
    # Every trainable parameter is in exactly one group.
    grouped = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert sorted(grouped) == sorted(names)


@pytest.mark.parametrize("layer_decay", [None, 0.75])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_parameter_groups_have_one_name_each_and_hold_every_parameter_once(weight_decay, layer_decay):
    # The learning-rate monitor refuses two groups of one name: optimizer=adam has weight_decay 0,
    # for which timm still returns a decay and a no-decay group per layer.
    model = timm.create_model("test_resnet", num_classes=10)
    groups = parameter_groups(model, weight_decay=weight_decay, layer_decay=layer_decay)
    names = [group["name"] for group in groups]
    assert len(names) == len(set(names)), names
    grouped = [id(p) for group in groups for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    if layer_decay is not None:  # still one rate per layer
        assert len({group["lr_scale"] for group in groups}) >= 4


def test_unknown_optimizer_and_schedule_options_are_named():
    model = timm.create_model("test_resnet", num_classes=10)
    with pytest.raises(ConfigurationError, match="adamx"):
        build_optimizer(parameter_groups(model, weight_decay=0), opt="adamx", lr=1e-3)
    optimizer = build_optimizer(parameter_groups(model, weight_decay=0), opt="sgd", lr=0.1)
    with pytest.raises(ConfigurationError, match="warmup_epoch"):
        build_scheduler(optimizer, sched="cosine", num_epochs=5, updates_per_epoch=10, warmup_epoch=1)
    with pytest.raises(
        ConfigurationError,
        match=r"Unknown scheduler option\(s\) scheduler.patience; known: .*patience_epochs",
    ):
        build_scheduler(optimizer, sched="plateau", num_epochs=5, updates_per_epoch=10, patience=3)


def test_cosine_schedule_warms_up_per_step_then_decays():
    model = timm.create_model("test_resnet", num_classes=10)
    optimizer = build_optimizer(parameter_groups(model, weight_decay=0), opt="sgd", lr=0.1)
    scheduler, stepping = build_scheduler(
        optimizer,
        sched="cosine",
        num_epochs=4,
        updates_per_epoch=10,
        warmup_epochs=1,
        warmup_prefix=True,
        warmup_lr=0.0,
        min_lr=0.0,
    )
    assert stepping == {"interval": "step"}
    rates = []
    for step in range(40):
        scheduler.step_update(num_updates=step)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[0] == 0.0 and rates[5] == pytest.approx(0.05)  # linear warmup over the first epoch
    assert rates[10] == pytest.approx(0.1)  # peak
    assert rates[39] < 0.001 and all(a >= b for a, b in itertools.pairwise(rates[10:]))  # cosine decay


def test_hyperparameters_are_plain_data_even_from_hydra_configs():
    from omegaconf import OmegaConf

    model = ImageClassifier(
        backbone="test_resnet",
        class_names=OmegaConf.create(["cat", "dog"]),
        optimizer=OmegaConf.create({"opt": "sgd", "lr": 0.1}),
    )
    assert type(model.hparams["class_names"]) is list
    assert type(model.hparams["optimizer"]) is dict
    assert model.model.num_classes == 2
