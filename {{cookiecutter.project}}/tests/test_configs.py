"""Every option of every config group composes, and the presets say what their names promise."""

from __future__ import annotations

import pytest

from conftest import CONFIG_DIR

GROUPS_WITHOUT_DEFAULT = {"debug", "experiment", "hparams_search"}


def all_options() -> list[tuple[str, str]]:
    return sorted(
        (group.name, option.stem)
        for group in CONFIG_DIR.iterdir()
        if group.is_dir()
        for option in group.glob("*.yaml")
        if not (group.name == "trainer" and option.stem == "default")
    )


def test_every_group_documented_in_the_issue_exists():
    groups = {group for group, _ in all_options()}
    expected = {"data", "model", "optimizer", "scheduler", "trainer", "callbacks", "logger", "paths", "hydra"}
    expected |= {"finetune", "ema"}
    assert expected | GROUPS_WITHOUT_DEFAULT <= groups


@pytest.mark.parametrize(("group", "option"), all_options())
def test_every_config_option_composes(compose_config, group, option):
    config = compose_config([f"{group}={option}"])
    if group == "ema":  # an entry of the callbacks group when enabled
        assert ("ema" in config.callbacks) == (option != "none")
    elif group not in {"hydra", "debug", "experiment", "hparams_search"}:  # @package _global_ options
        assert group in config


@pytest.mark.parametrize(
    ("preset", "accelerator", "devices", "strategy"),
    [
        ("cpu", "cpu", 1, None),
        ("gpu", "gpu", 1, None),
        ("mps", "mps", 1, None),
        ("ddp", "gpu", -1, "ddp"),
        ("ddp_sim", "cpu", 2, "ddp"),
    ],
)
def test_trainer_presets_choose_their_hardware(compose_config, preset, accelerator, devices, strategy):
    trainer = compose_config([f"trainer={preset}"]).trainer
    assert (trainer.accelerator, trainer.devices, trainer.get("strategy")) == (accelerator, devices, strategy)


def test_eval_config_composes_and_requires_a_checkpoint(compose_config):
    config = compose_config(["ckpt_path=some.ckpt"], config_name="eval")
    assert config.ckpt_path == "some.ckpt"
    assert "model" not in config  # the model comes from the checkpoint


def test_callbacks_keep_the_best_checkpoint_by_validation_accuracy_and_the_last(compose_config):
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from {{ cookiecutter.package }}.training import instantiate_callbacks

    callbacks = instantiate_callbacks(compose_config().callbacks)
    best, last, periodic = (c for c in callbacks.values() if isinstance(c, ModelCheckpoint))
    assert (best.monitor, best.mode, best.save_top_k) == ("val/acc", "max", 1)
    assert (last.monitor, last.filename, last.min_seconds_between_writes) == (None, "last", 60)
    assert (periodic.filename, periodic._train_time_interval.total_seconds()) == ("last", 1800)
    assert callbacks["sigterm_checkpoint"].ckpt_path.endswith("checkpoints/last.ckpt")
    assert any(isinstance(c, EarlyStopping) for c in callbacks.values())


def test_experiment_overrides_several_groups(compose_config):
    config = compose_config(["experiment=digits_convnext"])
    assert config.model.backbone == "convnext_atto"
    assert config.optimizer.opt == "sgd"


def test_model_config_instantiates_for_the_data_classes(compose_config):
    from {{ cookiecutter.package }}.training import build_datamodule_and_model

    datamodule, model = build_datamodule_and_model(compose_config(["model.backbone=test_resnet"]))
    assert model.class_names == datamodule.class_names == [str(d) for d in range(10)]
    assert model.model.num_classes == 10
