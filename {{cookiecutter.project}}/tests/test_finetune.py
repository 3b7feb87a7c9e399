"""Fine-tuning: weights loaded as asked, strategies freeze what they promise, every switch has an effect."""

from __future__ import annotations

import csv
import itertools
import math
import re
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
from lightning.pytorch import Callback
from safetensors.torch import save_file
from timm.data.mixup import mixup_target

from {{ cookiecutter.package }}.errors import ConfigurationError
from {{ cookiecutter.package }}.finetune import classifier_parameter_names
from {{ cookiecutter.package }}.models import ImageClassifier, create_network
from {{ cookiecutter.package }}.run.process import configure_process
from {{ cookiecutter.package }}.run.task import build_trainer
from {{ cookiecutter.package }}.training import build_datamodule_and_model, instantiate_callbacks, train

from conftest import FAST, fit, read_results, run_script


def backbone_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every tensor (parameters and buffers) of a timm model outside its classifier."""
    classifier = classifier_parameter_names(model)
    return {
        name: value.detach().clone() for name, value in model.state_dict().items() if name not in classifier
    }


def classifier_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: p.detach().clone()
        for name, p in model.named_parameters()
        if name in classifier_parameter_names(model)
    }


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> list[str]:
    return [name for name in before if not torch.equal(before[name], after[name])]


class RecordEpochs(Callback):
    """Keeps the timm model's tensors at the end of every training epoch, and each step's learning rates."""

    def __init__(self) -> None:
        self.backbone: list[dict[str, torch.Tensor]] = []
        self.classifier: list[dict[str, torch.Tensor]] = []
        self.learning_rates: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        groups = trainer.optimizers[0].param_groups
        self.learning_rates.append({group["name"]: group["lr"] for group in groups})

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.backbone.append(backbone_state(pl_module.model))
        self.classifier.append(classifier_state(pl_module.model))


# ---- weights ----------------------------------------------------------------------------------


def save_weights(model: torch.nn.Module, path: Path, layout: str) -> None:
    state = model.state_dict()
    if layout == "safetensors":
        save_file(state, str(path))
    elif layout == "state_dict":
        torch.save(state, path)
    elif layout == "lightning_checkpoint":  # what this project's checkpoints hold
        torch.save({"epoch": 3, "state_dict": {f"model.{k}": v for k, v in state.items()}}, path)


@pytest.mark.parametrize("layout", ["safetensors", "state_dict", "lightning_checkpoint"])
def test_weights_file_loads_every_tensor_but_the_classifier(tmp_path, layout):
    source = timm.create_model("test_resnet", num_classes=10)
    path = tmp_path / ("weights.safetensors" if layout == "safetensors" else "weights.pth")
    save_weights(source, path, layout)
    model = create_network("test_resnet", num_classes=10, weights=str(path))
    assert changed(backbone_state(source), backbone_state(model)) == []
    # Same number of classes, yet the classifier is a fresh one for our classes, not the file's.
    assert all(not torch.equal(p, classifier_state(source)[n]) for n, p in classifier_state(model).items())


def test_timm_training_checkpoint_loads_its_ema_weights(tmp_path):
    live, averaged = timm.create_model("test_resnet"), timm.create_model("test_resnet")
    torch.save(
        {"epoch": 9, "state_dict": live.state_dict(), "state_dict_ema": averaged.state_dict()},
        tmp_path / "c.pth",
    )
    model = create_network("test_resnet", num_classes=3, weights=str(tmp_path / "c.pth"))
    assert changed(backbone_state(averaged), backbone_state(model)) == []


def test_weights_of_another_shape_name_the_first_mismatching_tensor(tmp_path):
    grey = timm.create_model("test_resnet", in_chans=1)
    torch.save(grey.state_dict(), tmp_path / "grey.pth")
    first = next(
        name
        for name, p in grey.state_dict().items()
        if p.shape != timm.create_model("test_resnet").state_dict()[name].shape
    )
    with pytest.raises(ConfigurationError) as error:
        create_network("test_resnet", num_classes=10, weights=str(tmp_path / "grey.pth"))
    message = str(error.value)
    assert f"tensor {first!r}" in message and "(16, 1, 3, 3)" in message.replace("torch.Size", "")
    assert "model.backbone" in message


def test_weights_of_another_architecture_name_a_missing_tensor(tmp_path):
    torch.save(timm.create_model("test_vit").state_dict(), tmp_path / "vit.pth")
    with pytest.raises(
        ConfigurationError, match=r"has no tensor '[\w.]+' \(\d+ of the model's \d+ are missing\)"
    ):
        create_network("test_resnet", num_classes=10, weights=str(tmp_path / "vit.pth"))


def test_unreadable_weights_file_is_named(tmp_path):
    (tmp_path / "notes.pth").write_text("not weights")
    with pytest.raises(ConfigurationError, match=r"model.weights='.*notes.pth' is not a weights file"):
        create_network("test_resnet", num_classes=10, weights=str(tmp_path / "notes.pth"))


@pytest.mark.slow
def test_weights_trained_on_digits_0_to_4_transfer_to_a_linear_probe_on_5_to_9(compose_config, tmp_path):
    def run(name: str, overrides: list[str]) -> dict:
        config = compose_config(
            ["~callbacks.progress_bar", "~callbacks.model_summary", "trainer.max_epochs=6", *overrides]
        )
        config.paths.output_dir = str(tmp_path / name)
        return train(config)

    pretrained = run("pretrain", ["data.classes=[0,1,2,3,4]"])
    probe = ["data.classes=[5,6,7,8,9]", "finetune=linear_probe", "optimizer.lr=0.01"]
    transferred = run("transferred", [*probe, f"model.weights={pretrained['best_checkpoint']}"])
    scratch = run("scratch", probe)
    assert transferred["metrics"]["test/acc"] > scratch["metrics"]["test/acc"] + 0.25
    assert transferred["metrics"]["test/acc"] > 0.8


# ---- strategies -------------------------------------------------------------------------------


def test_linear_probe_leaves_every_backbone_tensor_bit_identical(compose_config):
    config = compose_config([*FAST, "finetune=linear_probe"])
    configure_process(config)
    datamodule, model = build_datamodule_and_model(config)
    backbone, classifier = backbone_state(model.model), classifier_state(model.model)
    trainer = build_trainer(config, list(instantiate_callbacks(config.callbacks).values()), loggers=[])
    trainer.fit(model, datamodule=datamodule)
    assert any(name.endswith("running_mean") for name in backbone)  # batch-norm statistics are compared too
    assert changed(backbone, backbone_state(model.model)) == []
    assert changed(classifier, classifier_state(model.model)) == list(classifier)
    trained = {name for name, p in model.model.named_parameters() if p.requires_grad}
    assert trained == classifier_parameter_names(model.model)


def test_freeze_unfreeze_trains_the_classifier_first_then_the_backbone_at_its_fraction(compose_config):
    record = RecordEpochs()
    config = compose_config([*FAST, "finetune=freeze_unfreeze", "finetune.unfreeze_at_epoch=1"])
    configure_process(config)
    datamodule, model = build_datamodule_and_model(config)
    initial = backbone_state(model.model)
    trainer = build_trainer(config, [*instantiate_callbacks(config.callbacks).values(), record], loggers=[])
    trainer.fit(model, datamodule=datamodule)
    assert changed(initial, record.backbone[0]) == []  # epoch 0: classifier only, BN statistics kept
    assert changed(record.classifier[0], record.classifier[1])
    assert len(changed(initial, record.backbone[1])) > len(initial) // 2  # epoch 1: the backbone trains
    for rates in record.learning_rates:
        assert rates["backbone"] == pytest.approx(0.1 * rates["head"])


def test_freeze_unfreeze_under_ddp_keeps_the_backbone_until_its_epoch(tmp_path):
    source = timm.create_model("test_resnet", num_classes=10)
    torch.save(source.state_dict(), tmp_path / "weights.pth")
    result = run_script(
        "train.py",
        "trainer=ddp_sim",
        *FAST,
        "finetune=freeze_unfreeze",
        "finetune.unfreeze_at_epoch=1",
        f"model.weights={tmp_path / 'weights.pth'}",
        "callbacks.model_checkpoint.save_top_k=-1",
        "test=false",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    [results] = read_results(tmp_path / "logs")
    checkpoints = Path(results["output_dir"]) / "checkpoints"
    loaded = backbone_state(source)

    def backbone_at(epoch: int) -> dict[str, torch.Tensor]:
        state = torch.load(checkpoints / f"epoch_{epoch:03d}.ckpt", weights_only=True)["state_dict"]
        return {name: state[f"model.{name}"] for name in loaded}

    assert changed(loaded, backbone_at(0)) == []
    assert len(changed(loaded, backbone_at(1))) > len(loaded) // 2


def test_layer_decay_scales_each_layer_after_every_scheduler_step(compose_config):
    record = RecordEpochs()
    trainer, model = fit(compose_config([*FAST, "finetune=layer_decay", "finetune.layer_decay=0.5"]), record)
    groups = trainer.optimizers[0].param_groups
    scales = {group["name"]: group["lr_scale"] for group in groups}
    assert len({round(math.log2(s)) for s in scales.values()}) >= 4  # one rate per layer: 1, 1/2, 1/4, ...
    assert max(scales.values()) == 1.0 and all(s == 1.0 for n, s in scales.items() if n.startswith("head"))
    head = next(name for name in scales if name.startswith("head"))
    head_rates = [rates[head] for rates in record.learning_rates]
    assert len(set(head_rates)) > 3  # the schedule moved the rate ...
    for rates in record.learning_rates:  # ... and every layer followed it at its own scale
        for name, scale in scales.items():
            assert rates[name] == pytest.approx(rates[head] * scale)
    # The stem learns slowest: the deepest group is the first in timm's layer order.
    stem = next(name for name, _ in model.model.named_parameters())
    stem_group = next(
        g for g in groups if any(p is dict(model.model.named_parameters())[stem] for p in g["params"])
    )
    assert stem_group["lr_scale"] == min(scales.values())


@pytest.mark.parametrize("schedule", ["none", "plateau"])
def test_layer_decay_applies_with_every_scheduler(compose_config, schedule):
    record = RecordEpochs()
    fit(
        compose_config([*FAST, "finetune=layer_decay", "finetune.layer_decay=0.5", f"scheduler={schedule}"]),
        record,
    )
    rates = record.learning_rates[-1]
    assert len({round(value, 12) for value in rates.values()}) >= 4
    assert max(rates.values()) == pytest.approx(2.0e-3)  # optimizer.lr, for the classifier


def test_layer_decay_trains_with_an_optimizer_without_weight_decay(compose_config, tmp_path):
    # optimizer=adam has weight_decay 0; the learning-rate monitor needs one name per parameter group.
    train(compose_config([*FAST, "logger=csv", "optimizer=adam", "finetune=layer_decay", "test=false"]))
    with open(tmp_path / "run" / "csv" / "metrics.csv", newline="") as file:
        columns = next(csv.reader(file))
    assert len([column for column in columns if column.startswith("lr/backbone/layer_")]) >= 4


def test_bad_finetune_settings_are_refused_with_the_fix(compose_config):
    with pytest.raises(ConfigurationError, match=r"finetune.unfreeze_at_epoch=5 >= trainer.max_epochs=2"):
        train(compose_config([*FAST, "finetune=freeze_unfreeze", "finetune.unfreeze_at_epoch=5"]))
    with pytest.raises(
        ConfigurationError, match=re.escape("finetune.layer_decay=1.5: use a factor in (0, 1]")
    ):
        train(compose_config([*FAST, "finetune.layer_decay=1.5"]))
    with pytest.raises(ConfigurationError, match=r"even data.batch_size"):
        train(compose_config([*FAST, "model.mixup.prob=1.0", "data.batch_size=63"]))


# ---- regularisation ---------------------------------------------------------------------------


def capture_forward(module: torch.nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Record (input, output) of every forward call of `module`."""
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    module.register_forward_hook(
        lambda m, args, output: calls.append((args[0].detach().clone(), output.detach()))
    )
    return calls


def digits_batch(size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(size, 3, 32, 32, generator=generator), torch.arange(size) % 10


def test_mixup_trains_on_mixed_images_against_soft_targets(compose_config):
    model = ImageClassifier(
        "test_resnet",
        class_names=[str(i) for i in range(10)],
        label_smoothing=0.1,
        mixup={"prob": 1.0, "mixup_alpha": 1.0, "cutmix_alpha": 0.0},
    )
    calls = capture_forward(model.model)
    images, targets = digits_batch()
    loss = model.training_step((images.clone(), targets), 0)
    seen, logits = calls[-1]
    # Every image is lam * itself + (1 - lam) * its partner in the flipped batch, with one lam.
    lam = ((seen - images.flip(0)) / (images - images.flip(0)))[(images - images.flip(0)).abs() > 1e-3]
    assert 0 < lam.mean() < 1 and torch.allclose(lam, lam.mean().expand_as(lam), atol=1e-3)
    soft = mixup_target(targets, 10, lam.mean().item(), smoothing=0.1)
    assert loss.item() == pytest.approx(
        torch.sum(-soft * F.log_softmax(logits, dim=-1), dim=-1).mean().item(), rel=1e-3
    )
    model.eval()
    model.validation_step((images, targets), 0)
    assert torch.equal(calls[-1][0], images)  # validation sees the images as they are


def test_cutmix_pastes_a_box_of_the_partner_image():
    model = ImageClassifier(
        "test_resnet",
        class_names=[str(i) for i in range(10)],
        mixup={"prob": 1.0, "mixup_alpha": 0.0, "cutmix_alpha": 1.0},
    )
    calls = capture_forward(model.model)
    images, targets = digits_batch()
    for _ in range(5):  # a box may by chance cover nothing; one of five draws does
        model.training_step((images.clone(), targets), 0)
        seen = calls[-1][0]
        from_partner = torch.isclose(seen, images.flip(0)) & ~torch.isclose(seen, images)
        if from_partner.any():
            break
    assert from_partner.any() and torch.isclose(seen, images).any()


def test_label_smoothing_applies_to_training_loss_only():
    model = ImageClassifier("test_resnet", class_names=["a", "b", "c"], label_smoothing=0.2)
    calls = capture_forward(model.model)
    images, targets = digits_batch()
    targets = targets % 3
    loss = model.training_step((images, targets), 0)
    assert loss.item() == pytest.approx(
        F.cross_entropy(calls[-1][1], targets, label_smoothing=0.2).item(), rel=1e-5
    )
    model.eval()
    model.validation_step((images, targets), 0)
    assert model.val_loss.compute().item() == pytest.approx(
        F.cross_entropy(calls[-1][1], targets).item(), rel=1e-5
    )


def test_drop_rates_reach_the_timm_model():
    from timm.layers import DropPath

    model = ImageClassifier("test_resnet", class_names=["a", "b"], drop_rate=0.3, drop_path_rate=0.2)
    assert model.model.drop_rate == 0.3
    rates = [m.drop_prob for m in model.model.modules() if isinstance(m, DropPath)]
    assert rates and max(rates) == pytest.approx(0.2)


@pytest.mark.parametrize("backbone", ["test_resnet", "test_convnext", "test_vit"])
def test_a_frozen_backbone_computes_fixed_features_but_keeps_the_dropout_before_the_classifier(backbone):
    # timm applies drop_rate as a function (ResNet), as a module inside `head` (ConvNeXt's head.drop)
    # or as a top-level `head_drop` (ViT).
    linear_probe = {
        "name": "linear_probe", "unfreeze_at_epoch": None, "backbone_lr_scale": 1.0, "layer_decay": None
    }  # fmt: skip
    model = ImageClassifier(
        backbone, class_names=["a", "b"], drop_rate=0.5, drop_path_rate=0.5, finetune=linear_probe
    ).train()
    images = torch.randn(8, 3, 160, 160)  # test_vit's input size
    with torch.no_grad():
        assert torch.equal(model.model.forward_features(images), model.model.forward_features(images))
        assert not torch.equal(model(images), model(images))


def test_ema_stands_for_the_live_weights_until_it_starts_averaging(compose_config, tmp_path):
    # Averaging starts after this 6-step run: validation, checkpoints, the test and the final weights
    # are those of the same run without EMA, not those of the untrained model.
    runs = {}
    for name, overrides in {
        "ema": ["ema=enabled", "callbacks.ema.update_starting_at_step=100"],
        "none": [],
    }.items():
        config = compose_config([*FAST, "logger=csv", *overrides])
        config.paths.output_dir = str(tmp_path / name)
        runs[name] = train(config)
    for key in ("val/loss", "val/acc", "test/loss", "test/acc"):
        assert runs["ema"]["metrics"][key] == runs["none"]["metrics"][key], key
    final = {
        name: torch.load(run["last_checkpoint"], weights_only=True)["state_dict"]
        for name, run in runs.items()
    }
    assert all(torch.equal(final["ema"][name], final["none"][name]) for name in final["none"])


def test_ema_validates_saves_and_tests_the_averaged_weights(compose_config, tmp_path):
    overrides = [
        "ema=enabled",
        "callbacks.ema.decay=0.5",
        "callbacks.ema.update_starting_at_step=0",
        "logger=csv",
    ]
    config = compose_config([*FAST, *overrides])
    results = train(config)
    checkpoint = torch.load(results["best_checkpoint"], weights_only=True)
    averaged, live = checkpoint["state_dict"], checkpoint["current_model_state"]
    assert [
        name
        for name in averaged
        if averaged[name].is_floating_point() and not torch.equal(averaged[name], live[name])
    ]

    with open(tmp_path / "run" / "csv" / "metrics.csv") as file:
        logged = next(
            r for r in csv.DictReader(file) if r["val/loss"] and int(r["epoch"]) == checkpoint["epoch"]
        )

    def evaluate(state: dict[str, torch.Tensor], stage: str) -> dict[str, float]:
        datamodule, model = build_datamodule_and_model(config)
        model.load_state_dict(state)
        trainer = build_trainer(config, [], loggers=[])
        return getattr(trainer, stage)(model, datamodule=datamodule, verbose=False)[0]

    assert evaluate(averaged, "validate")["val/loss"] == pytest.approx(float(logged["val/loss"]), rel=1e-5)
    assert evaluate(live, "validate")["val/loss"] != pytest.approx(float(logged["val/loss"]), rel=1e-5)
    assert evaluate(averaged, "test")["test/loss"] == pytest.approx(results["metrics"]["test/loss"], rel=1e-5)


# ---- precision and speed ----------------------------------------------------------------------


class RecordForward(Callback):
    """Hooks the timm model once training starts and records its inputs and outputs."""

    def on_train_start(self, trainer, pl_module) -> None:
        self.calls = capture_forward(pl_module.model)


def test_bf16_mixed_precision_runs_the_model_in_bfloat16(compose_config):
    record = RecordForward()
    fit(compose_config([*FAST, "trainer.max_epochs=1", "trainer.precision=bf16-mixed"]), record)
    assert record.calls and all(output.dtype == torch.bfloat16 for _, output in record.calls)


def test_channels_last_feeds_and_stores_the_model_in_nhwc(compose_config):
    record = RecordForward()
    _, model = fit(compose_config([*FAST, "trainer.max_epochs=1", "model.channels_last=true"]), record)
    assert all(images.is_contiguous(memory_format=torch.channels_last) for images, _ in record.calls)
    convolution = next(p for p in model.model.parameters() if p.ndim == 4 and p.shape[-1] > 1)
    assert convolution.is_contiguous(memory_format=torch.channels_last)


def test_compile_runs_the_compiled_model_and_keeps_checkpoint_names(compose_config):
    from torch._dynamo.utils import counters

    counters.clear()
    trainer, _ = fit(
        compose_config([*FAST, "trainer.max_epochs=1", "model.compile=true", "model.compile_backend=eager"])
    )
    assert counters["stats"]["unique_graphs"] > 0
    state = torch.load(trainer.checkpoint_callback.best_model_path, weights_only=True)["state_dict"]
    assert not [name for name in state if "_orig_mod" in name]


def test_gradient_accumulation_takes_one_optimizer_step_per_n_batches(compose_config):
    trainer, _ = fit(compose_config([*FAST, "trainer.accumulate_grad_batches=3"]))
    assert trainer.global_step == 2  # 2 epochs x 3 batches / 3


@pytest.mark.parametrize(("clip", "bounded"), [(1.0e-3, True), (None, False)])
def test_gradient_clipping_bounds_the_update(compose_config, clip, bounded):
    overrides = [
        *FAST,
        "trainer.max_epochs=1",
        "+trainer.max_steps=1",
        f"trainer.gradient_clip_val={'null' if clip is None else clip}",
        "optimizer.opt=momentum",
        "+optimizer.momentum=0",
        "optimizer.weight_decay=0",
        "optimizer.lr=1.0",
        "scheduler=none",
    ]
    config = compose_config(overrides)
    configure_process(config)
    datamodule, model = build_datamodule_and_model(config)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    build_trainer(config, [], loggers=[]).fit(model, datamodule=datamodule)
    step = torch.cat([p.detach().flatten() for p in model.parameters()]) - before  # = lr * clipped gradient
    assert (step.norm().item() <= 1.0e-3 * 1.001) == bounded


# ---- schedules, as the learning-rate monitor logs them ------------------------------------------


def logged_learning_rates(run_dir: Path, name: str = "lr/head") -> list[float]:
    with open(run_dir / "csv" / "metrics.csv") as file:
        return [float(row[name]) for row in csv.DictReader(file) if row.get(name)]


def test_step_schedule_is_what_the_learning_rate_monitor_logs(compose_config, tmp_path):
    train(compose_config([
        *FAST, "logger=csv", "test=false", "trainer.max_epochs=3", "trainer.limit_train_batches=2",
        "scheduler=step", "scheduler.warmup_epochs=0", "scheduler.decay_epochs=1", "scheduler.decay_rate=0.5",
    ]))  # fmt: skip
    assert logged_learning_rates(tmp_path / "run") == pytest.approx([2e-3, 2e-3, 1e-3, 1e-3, 5e-4, 5e-4])


def test_plateau_schedule_lowers_the_rate_when_the_metric_stalls(compose_config, tmp_path):
    # A threshold no epoch can beat: every epoch after the first counts as a plateau.
    train(compose_config([
        *FAST, "logger=csv", "test=false", "trainer.max_epochs=4", "scheduler=plateau",
        "scheduler.patience_epochs=0", "scheduler.decay_rate=0.5", "+scheduler.threshold=100",
    ]))  # fmt: skip
    per_step = logged_learning_rates(tmp_path / "run")
    assert per_step[::3] == pytest.approx([2e-3, 2e-3, 1e-3, 5e-4])  # 3 steps per epoch


def test_cosine_warmup_is_what_the_learning_rate_monitor_logs(compose_config, tmp_path):
    train(compose_config([*FAST, "logger=csv", "test=false", "trainer.max_epochs=4"]))
    rates = logged_learning_rates(tmp_path / "run")
    peak = rates.index(max(rates))
    assert rates[0] == pytest.approx(1e-5) and peak == 3  # linear warmup over the first epoch (3 steps)
    assert all(a < b for a, b in itertools.pairwise(rates[: peak + 1]))
    assert all(a >= b for a, b in itertools.pairwise(rates[peak:])) and rates[-1] < rates[peak] / 2
