"""The pictures and tables of a run (plots/): real files, right numbers, in every logger, once under DDP."""

from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer
from PIL import Image

from {{ cookiecutter.package }}.callbacks import FeatureMaps
from {{ cookiecutter.package }}.callbacks.confusion import per_class_metrics
from {{ cookiecutter.package }}.callbacks.drawing import (
    CAPTION,
    DPI,
    GAP,
    TILE,
    TITLE,
    confusion_matrix_figure,
    most_confused_pairs,
)
from {{ cookiecutter.package }}.data.transforms import unnormalise
from {{ cookiecutter.package }}.errors import ConfigurationError
from {{ cookiecutter.package }}.hydra_compat import VERSION_BASE
from {{ cookiecutter.package }}.run.checkpoints import load_classifier
from {{ cookiecutter.package }}.training import build_datamodule_and_model, train

from conftest import FAST, run_script

# The whole test split (269 digits), so that the test confusion matrix can be checked against it.
# Trained long enough that the predictions spread over the classes.
WHOLE_TEST = [*FAST, "~trainer.limit_test_batches", "trainer.limit_train_batches=12"]
PLOTS = {
    "val_confusion_matrix.png",
    "val_confusion_matrix.csv",
    "test_confusion_matrix.png",
    "test_confusion_matrix.csv",
    "test_per_class_metrics.csv",
    "test_reliability.png",
    "val_samples.png",
    "test_errors.png",
    "curves.png",
    "curves.csv",
}


def read_counts(path: Path) -> np.ndarray:
    rows = list(csv.reader(path.open()))
    return np.array([[int(v) for v in row[1:]] for row in rows[1:]])


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.verify()  # a whole, readable PNG
    with Image.open(path) as image:
        return image.size


def test_per_class_metrics_of_a_hand_made_confusion_matrix():
    # Rows: true class, columns: predicted. Class c is never predicted and never right.
    counts = np.array([[3, 1, 0], [0, 2, 0], [1, 0, 0]])
    metrics = per_class_metrics(counts, ["a", "b", "c"])
    a, b, c = (metrics["classes"][name] for name in "abc")
    assert a == pytest.approx({"precision": 3 / 4, "recall": 3 / 4, "f1": 3 / 4, "support": 4})
    assert b == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert c == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert metrics["accuracy"] == pytest.approx(5 / 7)
    assert metrics["macro"]["f1"] == pytest.approx((0.75 + 0.8 + 0) / 3)
    assert metrics["weighted"]["recall"] == pytest.approx((4 * 0.75 + 2 * 1.0 + 0) / 7)
    assert metrics["weighted"]["precision"] == pytest.approx((4 * 0.75 + 2 * 2 / 3) / 7)


def test_a_confusion_matrix_of_120_classes_lists_the_most_confused_pairs(tmp_path):
    counts = np.diag(np.full(120, 5))
    counts[7, 93] = 4  # the most confused pair
    counts[50, 2] = 2
    names = [f"class_{i}" for i in range(120)]
    assert most_confused_pairs(counts, 3) == [(7, 93, 4), (50, 2, 2)]
    figure = confusion_matrix_figure(counts, names, "Test")
    texts = [text.get_text() for text in [*figure.texts, *(t for axes in figure.axes for t in axes.texts)]]
    assert any("class_7 -> class_93" in text for text in texts)
    figure.savefig(tmp_path / "matrix.png", dpi=figure.dpi)
    width, height = (round(v * DPI) for v in figure.get_size_inches())
    assert png_size(tmp_path / "matrix.png") == (width, height)
    assert width <= 2600  # readable, not a poster


def test_images_are_shown_as_the_user_sees_them_before_normalisation():
    image = torch.rand(2, 3, 8, 8)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    normalised = (image - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    shown = unnormalise(normalised, {"mean": mean, "std": std})
    assert shown.shape == (2, 8, 8, 3) and shown.dtype == np.uint8
    assert np.abs(shown.astype(int) - (image.permute(0, 2, 3, 1).numpy() * 255).round()).max() <= 1


def test_a_run_writes_its_plots_and_the_test_matrix_matches_the_best_checkpoint(
    compose_config, tmp_path, capsys
):
    pytest.importorskip("tensorboard")
    results = train(
        compose_config([*WHOLE_TEST, "logger=[csv,tensorboard]", "logger.tensorboard.log_graph=true"])
    )
    # The closing summary names each logger's directory.
    printed = capsys.readouterr().out
    for kind in ("csv", "tensorboard"):
        assert re.search(rf"logs \({kind}\) +{re.escape(str(tmp_path / 'run' / kind))}", printed), printed
    plots = tmp_path / "run" / "plots"
    assert {path.name for path in plots.iterdir()} == PLOTS  # and no temporary file left behind

    # Every picture is a whole PNG of the size its figure was drawn at.
    assert png_size(plots / "curves.png") == (1350, 380)
    assert png_size(plots / "test_confusion_matrix.png") == png_size(plots / "val_confusion_matrix.png")
    # 16 images in 2 rows of 8 tiles, each with a caption above, under the title.
    assert png_size(plots / "val_samples.png") == (8 * (TILE + GAP), 2 * (TILE + CAPTION) + TITLE)

    # The test matrix counts each test image once, as the tested (best) checkpoint classifies it.
    counts = read_counts(plots / "test_confusion_matrix.csv")
    model = load_classifier(results["best_checkpoint"]).eval()
    datamodule, _ = build_datamodule_and_model(compose_config(WHOLE_TEST))
    datamodule.use_preprocessing(model.preprocessing)
    datamodule.setup("test")
    expected = np.zeros_like(counts)
    with torch.no_grad():
        for images, targets in datamodule.test_dataloader():
            for true, predicted in zip(targets.tolist(), model(images).argmax(-1).tolist(), strict=True):
                expected[true, predicted] += 1
    assert counts.sum() == len(datamodule.datasets["test"]) == 269
    assert (counts == expected).all()
    assert (counts.sum(axis=0) > 0).sum() >= 5  # not a model that predicts one class
    assert np.trace(counts) / counts.sum() == pytest.approx(results["metrics"]["test/acc"], abs=1e-6)

    # Per-class metrics come from that matrix, into results.json, the CSV and the logged metrics.
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    per_class = per_class_metrics(counts, model.class_names)
    assert saved["test_per_class"]["classes"] == per_class["classes"]
    assert saved["metrics"]["test/f1_macro"] == pytest.approx(per_class["macro"]["f1"])
    assert {"test/acc_top3", "test/acc_top5"} <= set(saved["metrics"])
    rows = list(csv.DictReader((plots / "test_per_class_metrics.csv").open()))
    assert [row["class"] for row in rows] == [*model.class_names, "macro", "weighted"]
    assert sum(int(row["support"]) for row in rows[:-2]) == 269

    # Curves: one row per epoch with train and val values; the validation matrix is of the best epoch.
    curves = list(csv.DictReader((plots / "curves.csv").open()))
    assert [row["epoch"] for row in curves] == ["0", "1"]
    assert all(row["train/loss"] and row["val/acc"] for row in curves)
    best_epoch = int(re.search(r"epoch_(\d+)", results["best_checkpoint"]).group(1))
    val_counts = read_counts(plots / "val_confusion_matrix.csv")
    best_val_acc = float(curves[best_epoch]["val/acc"])
    assert np.trace(val_counts) / val_counts.sum() == pytest.approx(best_val_acc, abs=1e-6)

    # TensorBoard holds the pictures and the hyperparameters with the final metrics (HPARAMS tab).
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0}).Reload()
    images = set(events.Tags()["images"])
    assert {"plots/test_confusion_matrix", "plots/val_samples", "plots/curves", "plots/test_errors"} <= images
    assert all(len(events.Images(tag)) == 1 for tag in images)
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    def hparams(tag: str) -> HParamsPluginData:
        return HParamsPluginData.FromString(events.summary_metadata[tag].plugin_data.content)

    assert events.Tags()["graph"]  # traced once, as asked
    metrics = {info.name.tag for info in hparams("_hparams_/experiment").experiment.metric_infos}
    assert {"test/acc", "test/loss", "val/acc"} <= metrics
    session = hparams("_hparams_/session_start_info").session_start_info.hparams
    assert session["model/backbone"].string_value == "test_resnet"
    assert session["optimizer/lr"].number_value == pytest.approx(2e-3)


def test_the_validation_matrix_is_that_of_the_best_epoch_not_the_last(tmp_path):
    from lightning.pytorch import LightningModule
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader, TensorDataset

    from {{ cookiecutter.package }}.callbacks import ConfusionMatrix

    class Scripted(LightningModule):
        """Right about 1, 3 and 2 of the 4 validation images (all of class a) in epochs 0, 1 and 2."""

        class_names = ("a", "b")

        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            return (self.weight * batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

        def validation_step(self, batch, batch_idx):
            right = (1, 3, 2)[self.current_epoch]
            logits = torch.tensor([[1.0, 0.0]] * right + [[0.0, 1.0]] * (4 - right))
            return {"logits": logits, "targets": torch.zeros(4, dtype=torch.long)}

        def on_validation_epoch_end(self):
            self.log("val/acc", (0.25, 0.75, 0.5)[self.current_epoch])

    data = DataLoader(TensorDataset(torch.zeros(4, 1)), batch_size=4)
    trainer = Trainer(
        max_epochs=3,
        callbacks=[
            ConfusionMatrix(str(tmp_path / "plots")),
            ModelCheckpoint(tmp_path / "checkpoints", monitor="val/acc", mode="max"),
        ],
        num_sanity_val_steps=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Scripted(), train_dataloaders=data, val_dataloaders=data)
    assert read_counts(tmp_path / "plots" / "val_confusion_matrix.csv").tolist() == [[3, 1], [0, 0]]


def test_wandb_offline_run_holds_the_pictures_and_the_config_as_plain_data(compose_config, tmp_path):
    pytest.importorskip("wandb")
    train(compose_config([*FAST, "logger=wandb"]))
    (run_dir,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    media = run_dir / "files" / "media" / "images" / "plots"
    pictures = {
        re.sub(r"_\d+_[0-9a-f]+\.png$", "", path.name) for path in media.glob("*.png")
    }  # key_step_hash
    assert {"test_confusion_matrix", "val_confusion_matrix", "val_samples", "curves"} <= pictures
    # The run's record (wandb's own format, which `wandb sync` uploads) holds the config as JSON and
    # the final metrics.
    # wandb's own service process writes the record, and under load it can end a moment after finish().
    deadline = time.monotonic() + 60
    record = next(run_dir.glob("run-*.wandb")).read_bytes()
    while b"test/f1_macro" not in record and time.monotonic() < deadline:
        time.sleep(0.5)
        record = next(run_dir.glob("run-*.wandb")).read_bytes()
    assert b'"backbone":"test_resnet"' in record and b"test/f1_macro" in record


def test_wandb_runs_of_a_sweep_are_grouped_by_sweep_and_named_by_overrides(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from {{ cookiecutter.package }}.run.loggers import _group_wandb_runs_of_a_sweep

    from conftest import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), **VERSION_BASE):
        config = compose(
            "train",
            [
                "logger=wandb",
                "optimizer=sgd",
                "hydra.mode=MULTIRUN",
                "hydra.job.num=1",
                "hydra.job.name=train",
            ],
            return_hydra_config=True,
        )
    config.hydra.job.override_dirname = "optimizer=sgd"
    HydraConfig.instance().set_config(config)
    try:
        _group_wandb_runs_of_a_sweep(config.logger.wandb)
    finally:
        HydraConfig.instance().cfg = None
    assert config.logger.wandb.group.startswith("train/") and config.logger.wandb.name == "optimizer=sgd"


def test_fast_dev_run_draws_nothing(compose_config, tmp_path):
    train(compose_config(["debug=fdr", "model.backbone=test_resnet"]))
    assert not (tmp_path / "run" / "plots").exists()


def test_every_logging_callback_can_be_turned_off_with_one_override(compose_config, tmp_path):
    drawing = ("confusion_matrix", "sample_predictions", "learning_curves", "calibration")
    off = [f"callbacks.{name}=null" for name in drawing]
    results = train(compose_config([*FAST, *off]))
    assert {path.name for path in (tmp_path / "run" / "plots").iterdir()} == {"test_per_class_metrics.csv"}
    assert "test_per_class" in results


def test_a_resumed_run_draws_the_curves_of_its_whole_training(compose_config, tmp_path):
    first = compose_config([*FAST, "test=false"])
    first.paths.output_dir = str(tmp_path / "first")
    last = train(first)["last_checkpoint"]
    resumed = compose_config([*FAST, "test=false", "trainer.max_epochs=3", f"ckpt_path={last}"])
    resumed.paths.output_dir = str(tmp_path / "resumed")
    train(resumed)
    before, after = (
        list(csv.DictReader((tmp_path / run / "plots" / "curves.csv").open())) for run in ("first", "resumed")
    )
    assert after[:2] == before  # both epochs of the first run, train and val, come from the checkpoint
    assert [row["epoch"] for row in after] == ["0", "1", "2"] and all(after[2].values())


def test_feature_maps_are_drawn_for_the_last_stage_and_the_hooks_removed(compose_config, tmp_path):
    config = compose_config([*FAST, "callbacks=[default,feature_maps]"])
    assert config.callbacks.feature_maps.layers is None and "confusion_matrix" in config.callbacks
    datamodule, model = build_datamodule_and_model(config)
    callback = FeatureMaps(str(tmp_path / "plots"), num_images=3, channels=4)
    trainer = Trainer(
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=datamodule)
    assert callback.layers == [model.model.feature_info[-1]["module"]]
    layer = callback.layers[0]
    picture = tmp_path / "plots" / f"feature_maps_{layer.replace('.', '_')}.png"
    # 3 rows (images) of 5 tiles: the image itself and its 4 most active channels.
    assert png_size(picture) == (5 * (TILE + GAP), 3 * (TILE + CAPTION) + TITLE)
    assert callback.captured[layer].shape[0] == 3
    assert all(not module._forward_hooks for module in model.modules())


def test_feature_maps_of_an_unknown_layer_name_the_layers_that_exist(compose_config, tmp_path):
    _, model = build_datamodule_and_model(compose_config(FAST))
    callback = FeatureMaps(str(tmp_path), layers=["layer9"])
    trainer = Trainer(max_epochs=1, logger=False, enable_checkpointing=False)
    with pytest.raises(ConfigurationError, match=r"no layer 'layer9'; did you mean layer\d"):
        callback.setup(trainer, model, "fit")


def test_eval_writes_the_test_plots_of_the_checkpoint(compose_config, tmp_path):
    from {{ cookiecutter.package }}.evaluation import evaluate

    trained = train(compose_config(WHOLE_TEST))
    config = compose_config([f"ckpt_path={trained['best_checkpoint']}"], "eval")
    config.paths.output_dir = str(tmp_path / "eval")
    evaluated = evaluate(config)
    plots = tmp_path / "eval" / "plots"
    assert (
        read_counts(plots / "test_confusion_matrix.csv").tolist()
        == read_counts(tmp_path / "run" / "plots" / "test_confusion_matrix.csv").tolist()
    )
    assert evaluated["test_per_class"] == trained["test_per_class"]
    assert evaluated["calibration"]["test_ece"] == pytest.approx(trained["calibration"]["test_ece"], abs=1e-6)
    assert (plots / "test_errors.png").is_file() or trained["metrics"]["test/acc"] == 1.0


@pytest.mark.slow
def test_under_ddp_each_file_is_written_once_and_every_test_image_counted_once(tmp_path):
    pytest.importorskip("tensorboard")
    overrides = [
        *WHOLE_TEST,
        "trainer=ddp_sim",
        "logger=tensorboard",
        "hydra.run.dir=run",
        "hydra.verbose=[{{ cookiecutter.package }}.callbacks.figures]",
    ]
    result = run_script("train.py", *overrides, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    plots = tmp_path / "run" / "plots"
    assert {path.name for path in plots.iterdir()} == PLOTS
    for name in PLOTS:
        assert output.count(f"Wrote {plots / name}") == 1, name
    assert read_counts(plots / "test_confusion_matrix.csv").sum() == 269
    assert json.loads((tmp_path / "run" / "results.json").read_text())["world_size"] == 2

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0}).Reload()
    assert all(len(events.Images(tag)) == 1 for tag in events.Tags()["images"])
