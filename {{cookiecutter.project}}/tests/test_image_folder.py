"""Image folders as users have them: split or not, messy files, clear errors, caching, class balance."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import torch

from {{ cookiecutter.package }}.data import ImageFolderDataModule
from {{ cookiecutter.package }}.errors import ConfigurationError

from conftest import run_script, use_backbone_preprocessing, write_image_folder, write_images


def files_of(datamodule: ImageFolderDataModule, split: str) -> list[str]:
    return [str(path) for path in datamodule.split_files[split][0]]


def ready(datamodule: ImageFolderDataModule, backbone: str = "test_resnet") -> ImageFolderDataModule:
    use_backbone_preprocessing(datamodule, backbone)
    datamodule.setup("fit")
    return datamodule


def test_one_folder_of_classes_is_split_disjointly_stratified_and_identically_every_time(tmp_path):
    root = write_image_folder(tmp_path / "images", {"cat": 20, "dog": 40})
    first = ImageFolderDataModule(root=root, val_fraction=0.2, test_fraction=0.1, split_seed=3)
    again = ImageFolderDataModule(root=root, val_fraction=0.2, test_fraction=0.1, split_seed=3)
    other_seed = ImageFolderDataModule(root=root, val_fraction=0.2, test_fraction=0.1, split_seed=4)
    splits = {split: set(files_of(first, split)) for split in ("train", "val", "test")}
    assert not (
        splits["train"] & splits["val"] or splits["train"] & splits["test"] or splits["val"] & splits["test"]
    )
    assert len(splits["train"] | splits["val"] | splits["test"]) == 60
    assert all(files_of(first, split) == files_of(again, split) for split in splits)
    assert files_of(first, "val") != files_of(other_seed, "val")
    assert first.class_names == ["cat", "dog"]
    val_labels = first.split_files["val"][1]
    assert np.bincount(val_labels).tolist() == [4, 8]  # 20% of each class


def test_train_val_test_folders_are_used_as_given(tmp_path):
    for split, count in (("train", 6), ("val", 3), ("test", 2)):
        write_image_folder(tmp_path / split, {"ant": count, "bee": count})
    datamodule = ImageFolderDataModule(root=tmp_path)
    for split, count in (("train", 12), ("val", 6), ("test", 4)):
        assert len(files_of(datamodule, split)) == count
        assert all(f"/{split}/" in path for path in files_of(datamodule, split))


def test_without_a_val_folder_val_is_held_out_of_train_and_without_test_val_is_tested(tmp_path, caplog):
    write_image_folder(tmp_path / "train", {"ant": 10, "bee": 10})
    datamodule = ImageFolderDataModule(root=tmp_path, val_fraction=0.2)
    assert len(files_of(datamodule, "val")) == 4 and len(files_of(datamodule, "train")) == 16
    assert files_of(datamodule, "test") == files_of(datamodule, "val")
    assert "val split is used as the test split" in caplog.text
    assert not set(files_of(datamodule, "val")) & set(files_of(datamodule, "train"))


def test_hidden_and_non_image_files_are_ignored_and_upper_case_extensions_are_read(tmp_path):
    root = write_image_folder(tmp_path, {"ant": 4, "bee": 4})
    write_images(root / "ant", 2, suffix=".JPG")
    write_images(root / "bee", 1, suffix=".PNG")
    (root / "ant" / ".DS_Store").write_bytes(b"\0\1")
    (root / "ant" / "._image_000.png").write_bytes(b"\0\5Mac resource fork")
    (root / "bee" / "notes.txt").write_text("taken on holiday")
    write_images(root / "bee" / ".thumbnails", 3)
    datamodule = ImageFolderDataModule(root=root, bad_files="error", val_fraction=0.25, test_fraction=0.25)
    all_files = [path for split in ("train", "val", "test") for path in files_of(datamodule, split)]
    assert len(all_files) == 11
    assert sum(path.endswith((".JPG", ".PNG")) for path in all_files) == 3


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("missing", "is not a folder"),
        ("no_classes", "has no class folders"),
        ("empty_class", "holds no images"),
        ("unknown_val_class", "The val split has classes that the training split lacks: ['wasp']"),
        ("tiny_class", "Class 'bee' has 2 image(s), too few to split"),
        ("stray_folder", "it also holds ['extra']"),
    ],
)
def test_folder_mistakes_fail_with_a_message_naming_them(tmp_path, layout, message):
    root = tmp_path / "images"
    if layout == "no_classes":
        write_images(root, 3)
    elif layout == "empty_class":
        write_image_folder(root, {"ant": 5})
        (root / "bee").mkdir()
        (root / "bee" / "readme.txt").write_text("todo")
    elif layout == "unknown_val_class":
        write_image_folder(root / "train", {"ant": 3, "bee": 3})
        write_image_folder(root / "val", {"ant": 1, "wasp": 1})
    elif layout == "tiny_class":
        write_image_folder(root, {"ant": 10, "bee": 2})
    elif layout == "stray_folder":
        write_image_folder(root / "train", {"ant": 3, "bee": 3})
        write_image_folder(root / "extra", {"ant": 1})
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        ImageFolderDataModule(root=root)


def test_a_training_split_smaller_than_a_batch_is_refused(tmp_path):
    datamodule = ImageFolderDataModule(root=write_image_folder(tmp_path, {"ant": 5, "bee": 5}), batch_size=64)
    with pytest.raises(ConfigurationError, match=r"split has \d+ images, fewer than data\.batch_size=64;"):
        ready(datamodule)


@pytest.mark.slow
def test_under_ddp_a_batch_larger_than_each_process_share_is_refused(tmp_path):
    # 20 training images are 10 per process: a batch of 16 would give each process no step at all.
    write_image_folder(tmp_path / "images" / "train", {"ant": 10, "bee": 10})
    write_image_folder(tmp_path / "images" / "val", {"ant": 2, "bee": 2})
    arguments = [f"data.root={tmp_path / 'images'}", "data.batch_size=16", "model.backbone=test_resnet"]
    result = run_script("train.py", "data=image_folder", "trainer=ddp_sim", *arguments, cwd=tmp_path)
    assert result.returncode == 1
    assert "20 images (10 on each of 2 processes), fewer than data.batch_size=16" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "logs").rglob("*.ckpt"))  # refused before the first step


def test_a_batch_that_drops_a_large_part_of_each_epoch_is_warned_about_with_a_better_size(tmp_path, caplog):
    # 16 training images in batches of 10: one step per epoch, 6 images (38%) never in it.
    write_image_folder(tmp_path / "train", {"ant": 8, "bee": 8})
    write_image_folder(tmp_path / "val", {"ant": 1, "bee": 1})
    datamodule = ImageFolderDataModule(root=tmp_path, batch_size=10)
    with caplog.at_level(logging.WARNING):
        ready(datamodule)
    assert "1 steps per epoch, and 6 images (38%) left out" in caplog.text
    assert "data.batch_size=8 would use nearly all of them in 2 steps" in caplog.text


def test_no_warning_when_the_dropped_remainder_is_small(tmp_path, caplog):
    write_image_folder(tmp_path / "train", {"ant": 8, "bee": 9})  # 2 batches of 8, 1 image left out
    write_image_folder(tmp_path / "val", {"ant": 1, "bee": 1})
    datamodule = ImageFolderDataModule(root=tmp_path, batch_size=8)
    with caplog.at_level(logging.WARNING):
        ready(datamodule)
    assert "left out" not in caplog.text


def broken_files(root):
    (root / "ant" / "empty.png").write_bytes(b"")
    (root / "bee" / "text.jpg").write_text("not an image")
    good = (root / "bee" / "image_000.png").read_bytes()
    (root / "bee" / "truncated.png").write_bytes(good[: len(good) // 2])


def test_unreadable_files_are_skipped_counted_and_listed_by_default(tmp_path, caplog):
    root = write_image_folder(tmp_path / "images", {"ant": 8, "bee": 8})
    broken_files(root)
    listing = tmp_path / "run" / "bad_files.txt"
    with caplog.at_level(logging.WARNING):
        datamodule = ImageFolderDataModule(root=root, bad_files_list=listing, image_size=16, batch_size=4)
    assert "Skipped 2 unreadable image file(s)" in caplog.text and str(listing) in caplog.text
    assert {line.split("\t")[0].rsplit("/", 1)[1] for line in listing.read_text().splitlines()} == {
        "empty.png",
        "text.jpg",
    }
    # The truncated file has a valid header; it fails when decoded, and another image is served instead.
    ready(datamodule)
    for dataset in datamodule.datasets.values():
        for index in range(len(dataset)):
            image, _ = dataset[index]
            assert image.shape == (3, 16, 16)
    assert "truncated.png" in listing.read_text()


def test_unreadable_files_stop_the_run_naming_the_first_with_bad_files_error(tmp_path):
    root = write_image_folder(tmp_path, {"ant": 8, "bee": 8})
    broken_files(root)
    with pytest.raises(ConfigurationError, match=r"Cannot read image .*ant/empty\.png"):
        ImageFolderDataModule(root=root, bad_files="error")
    (root / "ant" / "empty.png").unlink()
    (root / "bee" / "text.jpg").unlink()
    datamodule = ready(ImageFolderDataModule(root=root, bad_files="error", split_seed=1, batch_size=2))
    with pytest.raises(ConfigurationError, match=r"Cannot read image .*truncated\.png"):
        for split in ("train", "val", "test"):
            for index in range(len(datamodule.datasets[split])):
                datamodule.datasets[split][index]


def test_cached_images_give_the_same_batches_as_files(tmp_path):
    root = write_image_folder(tmp_path, {"ant": 6, "bee": 6}, size=(20, 14))
    plain = ready(ImageFolderDataModule(root=root, image_size=16, augment="none", batch_size=2))
    cached = ready(
        ImageFolderDataModule(root=root, image_size=16, augment="none", batch_size=2, cache_images=True)
    )
    assert cached.datasets["train"].cache is not None and plain.datasets["train"].cache is None
    for split in ("train", "val"):
        for index in range(len(plain.datasets[split])):
            assert torch.equal(plain.datasets[split][index][0], cached.datasets[split][index][0])
    for path in root.rglob("*.png"):
        path.unlink()  # served from memory from now on
    assert cached.datasets["train"][0][0].shape == (3, 16, 16)


def test_class_counts_are_printed_and_imbalance_is_warned_about(tmp_path, capsys, caplog):
    root = write_image_folder(tmp_path, {"common": 40, "rare": 10})
    ready(ImageFolderDataModule(root=root, batch_size=4, image_size=16))
    table = capsys.readouterr().out
    assert re.search(r"common\s*│\s*28\s*│\s*6\s*│\s*6", table) and re.search(r"rare\s*│\s*6\s*│", table)
    assert "'common' has 28 images, 'rare' 6" in caplog.text and "data.weighted_sampler=true" in caplog.text


def test_weighted_sampler_draws_the_classes_about_equally_often(tmp_path):
    root = write_image_folder(tmp_path, {"common": 90, "rare": 10}, size=(4, 4))
    datamodule = ImageFolderDataModule(
        root=root, weighted_sampler=True, val_fraction=0.1, test_fraction=0.1, image_size=4, batch_size=20
    )
    ready(datamodule)
    sampler = datamodule.train_dataloader().sampler
    sampled = []
    for epoch in range(20):
        sampler.set_epoch(epoch)
        sampled += [int(datamodule.datasets["train"].labels[index]) for index, _ in sampler]
    assert np.bincount(datamodule.datasets["train"].labels).tolist() == [72, 8]
    assert np.mean(sampled) == pytest.approx(0.5, abs=0.05)  # 8 of 80 without the sampler


def test_the_native_input_size_warns_when_it_upscales_small_images(tmp_path, caplog):
    root = write_image_folder(tmp_path, {"ant": 4, "bee": 4}, size=(24, 20))
    preprocessing = use_backbone_preprocessing(ImageFolderDataModule(root=root), "test_resnet")
    assert preprocessing["input_size"] == [3, 160, 160]
    assert "median) image is 20 px on its short side" in caplog.text and "data.image_size=20" in caplog.text
    caplog.clear()
    use_backbone_preprocessing(ImageFolderDataModule(root=root, image_size=24), "test_resnet")
    assert "upscaled" not in caplog.text


def test_num_workers_null_loads_in_the_training_process_when_training_on_the_cpu(tmp_path):
    from lightning.pytorch import Trainer

    root = write_image_folder(tmp_path, {"ant": 6, "bee": 6})
    datamodule = ready(ImageFolderDataModule(root=root, num_workers=None, batch_size=2, image_size=8))
    datamodule.trainer = Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    assert datamodule.train_dataloader().num_workers == 0
    datamodule.num_workers = 2
    loader = datamodule.train_dataloader()
    assert loader.num_workers == 2 and loader.persistent_workers and not loader.pin_memory


@pytest.mark.parametrize(
    ("size", "chosen", "message"),
    [  # at least 32, multiples of 8, at most the native 160
        ((24, 20), 32, "32 px, the smallest size chosen automatically: the typical (median) short side of"),
        (
            (8, 8),
            32,
            "32 px, the smallest size chosen automatically: the typical (median) short side of the "
            "training images is only 8 px, as the model trains from scratch (the backbone's native size "
            "is 160 px",
        ),
        ((100, 80), 80, "80 px, from the typical (median) short side of the training images, 80 px"),
        (
            (400, 300),
            160,
            "the backbone's native 160 px (the training images are larger: median short side 300",
        ),
    ],
)
def test_from_scratch_the_input_size_follows_the_typical_image(tmp_path, caplog, size, chosen, message):
    caplog.set_level(logging.INFO)
    root = write_image_folder(tmp_path, {"ant": 3, "bee": 3}, size=size)
    preprocessing = use_backbone_preprocessing(
        ImageFolderDataModule(root=root), "test_resnet", from_scratch=True
    )
    assert preprocessing["input_size"] == [3, chosen, chosen]
    assert f"data.image_size=null: {message}" in caplog.text
    assert "upscaled" not in caplog.text


def test_pretrained_or_fixed_size_backbones_keep_their_native_input_size(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    root = write_image_folder(tmp_path, {"ant": 3, "bee": 3}, size=(100, 80))
    fixed = use_backbone_preprocessing(ImageFolderDataModule(root=root), "test_vit", from_scratch=True)
    assert fixed["input_size"] == [3, 160, 160] and "takes only that size" in caplog.text
    pretrained = use_backbone_preprocessing(ImageFolderDataModule(root=root), "test_resnet")
    assert pretrained["input_size"] == [3, 160, 160] and "pretrained or loaded weights" in caplog.text


def test_training_chooses_the_input_size_from_the_data_unless_weights_are_loaded(tmp_path, compose_config):
    import timm

    from {{ cookiecutter.package }}.training import build_datamodule_and_model

    root = write_image_folder(tmp_path / "images", {"ant": 6, "bee": 6}, size=(100, 80))
    data = ["data=image_folder", f"data.root={root}", "model.backbone=test_resnet"]
    _, model = build_datamodule_and_model(compose_config(data))
    assert model.preprocessing["input_size"] == [3, 80, 80]
    weights = tmp_path / "weights.pth"
    torch.save(timm.create_model("test_resnet").state_dict(), weights)
    _, model = build_datamodule_and_model(compose_config([*data, f"model.weights={weights}"]))
    assert model.preprocessing["input_size"] == [3, 160, 160]
    _, vit = build_datamodule_and_model(compose_config([*data, "model.backbone=test_vit"]))
    assert vit.preprocessing["input_size"] == list(timm.create_model("test_vit").pretrained_cfg["input_size"])
