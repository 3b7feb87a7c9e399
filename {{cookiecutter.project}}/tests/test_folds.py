"""k-fold cross-validation: data.folds=K data.fold=i on every data source (stratified folds of the images
outside the test split, fixed by data.split_seed, the same in every process), and the sweep summary's mean
and standard deviation of each metric across the folds."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import re
import statistics
from pathlib import Path

import numpy as np
import pytest
import yaml

from {{ cookiecutter.package }}.data import (
    CsvDataModule,
    DigitsDataModule,
    ImageFolderDataModule,
    TorchvisionDataModule,
    torchvision_datasets,
)
from {{ cookiecutter.package }}.data.splits import stratified_folds
from {{ cookiecutter.package }}.errors import ConfigurationError
from {{ cookiecutter.package }}.sweep import summarize_sweep
from {{ cookiecutter.package }}.training import train

from conftest import (
    FAST,
    PROJECT_ROOT,
    run_script,
    write_csv,
    write_idx,
    write_image_folder,
    write_images,
)


def check_partition_and_strata(labels: np.ndarray, parts: list[np.ndarray], pool: np.ndarray) -> None:
    """The folds hold every image of `pool` once, and each class's count per fold differs by at most 1."""
    assert np.array_equal(np.sort(np.concatenate(parts)), np.sort(pool))
    counts = np.array([np.bincount(labels[part], minlength=labels.max() + 1) for part in parts])
    assert (counts.max(axis=0) - counts.min(axis=0) <= 1).all(), counts


def test_folds_partition_the_images_with_each_class_spread_evenly_and_are_fixed_by_the_seed():
    labels = np.repeat([0, 1, 2], [7, 3, 12])  # uneven classes: 7 = 3 + 2 + 2 over 3 folds
    parts = stratified_folds(labels, folds=3, seed=5)
    check_partition_and_strata(labels, parts, np.arange(len(labels)))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert all(np.array_equal(a, b) for a, b in zip(parts, stratified_folds(labels, 3, seed=5), strict=True))
    assert not all(
        np.array_equal(a, b) for a, b in zip(parts, stratified_folds(labels, 3, seed=6), strict=True)
    )


def test_each_digits_fold_validates_on_one_fold_and_trains_on_the_others():
    plain = DigitsDataModule()
    pool = np.concatenate([plain.split_indices["train"], plain.split_indices["val"]])
    runs = [DigitsDataModule(folds=5, fold=fold) for fold in range(5)]
    vals = [run.split_indices["val"] for run in runs]
    check_partition_and_strata(plain.labels, vals, pool)
    for run, val in zip(runs, vals, strict=True):
        assert np.array_equal(run.split_indices["train"], np.setdiff1d(pool, val))
        assert np.array_equal(run.split_indices["test"], plain.split_indices["test"])
    again = DigitsDataModule(folds=5, fold=3)
    other_seed = DigitsDataModule(folds=5, fold=3, split_seed=1)
    assert np.array_equal(again.split_indices["val"], vals[3])
    assert not np.array_equal(other_seed.split_indices["val"], vals[3])


def test_without_folds_the_digits_splits_are_those_of_every_earlier_release():
    # sha256 of each split's indices (int64) as the project made them before data.folds existed.
    splits = DigitsDataModule().split_indices
    digests = {
        name: hashlib.sha256(indices.astype(np.int64).tobytes()).hexdigest()[:16]
        for name, indices in splits.items()
    }
    assert digests == {"train": "86db0feb0bf50aaf", "val": "0ed67d6621f59e5c", "test": "91058d44420c7807"}


def image_folder_source(tmp_path: Path, layout: str):
    """A way to build the data module of `layout` with given keyword arguments."""
    counts = {"ant": 14, "bee": 10, "cat": 8}
    if layout == "one folder":
        root = write_image_folder(tmp_path / "images", counts)
    elif layout == "csv":
        images = write_images(tmp_path / "pictures", 32)
        names = [name for name, count in counts.items() for _ in range(count)]
        rows = [(f"pictures/{path.name}", name) for path, name in zip(images, names, strict=True)]
        csv_path = write_csv(tmp_path / "labels.csv", rows)
        return lambda **kwargs: CsvDataModule(csv_path=csv_path, **kwargs)
    else:
        root = tmp_path / "images"
        write_image_folder(root / "train", counts)
        write_image_folder(root / "val", {"ant": 3, "bee": 3, "cat": 2})
        if layout == "train, val and test folders":
            write_image_folder(root / "test", {"ant": 4, "bee": 4, "cat": 4})
    return lambda **kwargs: ImageFolderDataModule(root=root, **kwargs)


@pytest.mark.parametrize(
    "layout", ["one folder", "csv", "train, val and test folders", "train and val folders"]
)
def test_image_file_folds_leave_the_test_split_as_it_is_and_cut_the_rest(tmp_path, layout):
    source = image_folder_source(tmp_path, layout)
    plain = source()
    # Without a test split of its own, the val split is the test split: it stays so, and the folds are
    # cut from the training images alone.
    pooled = ["train"] if plain.test_is_val else ["train", "val"]
    pool = [str(path) for split in pooled for path in plain.split_files[split][0]]
    runs = [source(folds=4, fold=fold) for fold in range(4)]
    vals = [[str(path) for path in run.split_files["val"][0]] for run in runs]
    assert sorted(path for val in vals for path in val) == sorted(pool)
    for run, val in zip(runs, vals, strict=True):
        assert run.split_files["test"][0] == plain.split_files["test"][0]
        assert sorted(map(str, run.split_files["train"][0])) == sorted(set(pool) - set(val))
        assert not run.test_is_val
    labels = np.concatenate([run.split_files["val"][1] for run in runs])
    positions = np.cumsum([0, *(len(val) for val in vals)])
    parts = [np.arange(start, end) for start, end in itertools.pairwise(positions)]
    check_partition_and_strata(labels, parts, np.arange(len(labels)))


@pytest.mark.parametrize("own_val_split", [False, True], ids=["MNIST", "MNIST with a val split"])
def test_torchvision_folds_leave_the_test_split_as_it_is(tmp_path, own_val_split, monkeypatch):
    raw = tmp_path / "data" / "MNIST" / "raw"
    for prefix, count in (("train", 60), ("t10k", 20)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", np.zeros((count, 28, 28), dtype=np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(count) % 10)
    if own_val_split:  # as Flowers102 or DTD have: the folds are cut from train and val together
        splits = {"train": {"train": True}, "val": {"train": False}, "test": {"train": False}}
        monkeypatch.setitem(torchvision_datasets.SPLIT_ARGUMENTS, "MNIST", splits)
    plain = TorchvisionDataModule(name="MNIST", root=tmp_path / "data")
    runs = [TorchvisionDataModule(name="MNIST", root=tmp_path / "data", folds=3, fold=f) for f in range(3)]
    pool_size = 80 if own_val_split else 60
    labels = runs[0].labels["train"]
    assert len(labels) == pool_size
    check_partition_and_strata(labels, [run.split_indices["val"][1] for run in runs], np.arange(pool_size))
    for run in runs:
        assert run.split_indices["test"][0] == "test"
        assert np.array_equal(run.split_indices["test"][1], plain.split_indices["test"][1])
        assert np.array_equal(run.labels["test"], plain.labels["test"])


FOLD_REFUSALS = [
    (["data.folds=abc"], "data.folds='abc' is not a whole number; set e.g. data.folds=5"),
    (["data.folds=2.5"], "data.folds=2.5 is not a whole number; set e.g. data.folds=5"),
    (["data.folds=5", "data.fold=abc"], "data.fold='abc' is not a"),
    (["data.folds=1"], "data.folds=1 must be at least 2; set e.g. data.folds=5"),
    (["data.folds=5", "data.fold=-1"], "data.fold=-1 must be at least 0; set e.g. data.fold=0"),
    (["data.folds=5", "data.fold=5"], "data.fold=5 is not a fold of data.folds=5: they are numbered 0 to 4"),
    (
        ["data.fold=2"],
        "data.fold=2 is set but data.folds is null (no cross-validation); set e.g. data.folds=5",
    ),
    (["data.folds=200"], "too few for 200 stratified folds (each fold needs an image of every class). Set"),
]


@pytest.mark.parametrize(("overrides", "message"), FOLD_REFUSALS, ids=lambda value: str(value)[:30])
def test_folds_that_do_not_fit_are_refused_in_process_before_training(compose_config, overrides, message):
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        train(compose_config([*FAST, *overrides]))


@pytest.mark.parametrize(("folds", "fold"), [(None, 2), (5, 5)])
def test_a_data_module_built_in_python_refuses_a_fold_that_is_not_one(tmp_path, folds, fold):
    write_image_folder(tmp_path / "images", {"ant": 6, "bee": 6})
    for build in (
        lambda: DigitsDataModule(folds=folds, fold=fold),
        lambda: ImageFolderDataModule(root=tmp_path / "images", folds=folds, fold=fold),
    ):
        with pytest.raises(ConfigurationError, match=re.escape(f"data.fold={fold} is")):
            build()


@pytest.mark.slow
def test_every_ddp_process_trains_and_validates_on_the_same_fold(tmp_path):
    tests_dir = str(PROJECT_ROOT / "tests")
    result = run_script(
        "train.py",
        "trainer=ddp_sim",
        *FAST,
        "trainer.max_epochs=1",
        "test=false",
        "data.folds=3",
        "data.fold=1",
        "hydra.run.dir=run",
        "+callbacks.rank_records._target_=rank_records.RecordRankSettings",
        "+callbacks.rank_records.directory=${paths.output_dir}",
        cwd=tmp_path,
        env={"PYTHONPATH": os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads((tmp_path / "run" / f"rank_{rank}.json").read_text()) for rank in (0, 1)]
    assert [record["world_size"] for record in records] == [2, 2]
    assert records[0]["split_indices"] == records[1]["split_indices"]
    expected = DigitsDataModule(folds=3, fold=1).split_indices
    assert records[0]["split_indices"] == {split: indices.tolist() for split, indices in expected.items()}


def write_job(sweep: Path, number: int, overrides: list[str], metrics: dict | None, value=None) -> None:
    """A job directory as train.py leaves it: its overrides, and results.json (or failure.json)."""
    job = sweep / str(number)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if metrics is None:
        (job / "failure.json").write_text(json.dumps({"error": "boom", "type": "RuntimeError"}))
        return
    optimized = {"metric": "val/acc", "value": value, "direction": "maximize"}
    (job / "results.json").write_text(json.dumps({"metrics": metrics, "optimized": optimized}))


def test_summary_gives_each_metrics_mean_and_std_across_the_folds_of_each_group(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    accuracies = {"adamw": [0.9, 0.8, 0.7], "sgd": [0.5, 0.6, None]}  # the last sgd fold failed
    number = 0
    for fold in range(3):
        for optimizer, values in accuracies.items():
            overrides = ["data.folds=3", f"data.fold={fold}", f"optimizer={optimizer}"]
            value = values[fold]
            metrics = None if value is None else {"val/acc": value, "test/acc": value / 2, "lr/head": 1e-5}
            write_job(sweep, number, overrides, metrics, None if value is None else value + 0.01)
            number += 1
    summary = summarize_sweep(sweep)
    with open(sweep / "summary_folds.csv") as file:
        rows = {(row["optimizer"], row["metric"]): row for row in csv.DictReader(file)}
    assert set(rows) == {
        (optimizer, metric)
        for optimizer in ("adamw", "sgd")
        for metric in ("val/acc (optimized)", "val/acc", "test/acc")
    }
    for optimizer, values in accuracies.items():
        finished = [value for value in values if value is not None]
        row = rows[(optimizer, "val/acc")]
        assert float(row["mean"]) == pytest.approx(statistics.mean(finished))
        assert float(row["std"]) == pytest.approx(statistics.stdev(finished))
        assert int(row["folds"]) == len(finished)
        assert float(rows[(optimizer, "test/acc")]["mean"]) == pytest.approx(statistics.mean(finished) / 2)
        optimized = rows[(optimizer, "val/acc (optimized)")]
        assert float(optimized["mean"]) == pytest.approx(statistics.mean(finished) + 0.01)
    assert rows[("adamw", "val/acc")]["jobs"] == "0 2 4" and rows[("sgd", "val/acc")]["jobs"] == "1 3 5"
    markdown = (sweep / "summary.md").read_text()
    assert "## Folds" in markdown and "| adamw | val/acc | 0.8000 | 0.1000 | 3 |" in markdown
    assert "| sgd | val/acc | 0.5500 | 0.07071 | 2 of 3 |" in markdown
    printed = capsys.readouterr().out
    assert "Across folds (2 groups of jobs that differ only in data.fold)" in printed
    assert re.search(r"adamw\s+val/acc\s+0\.8000\s+0\.1000\s+3", printed)
    assert summary.written["folds"] == sweep / "summary_folds.csv"


def test_a_sweep_without_folds_has_no_fold_summary(tmp_path):
    sweep = tmp_path / "sweep"
    for number, optimizer in enumerate(("adamw", "sgd")):
        write_job(sweep, number, [f"optimizer={optimizer}"], {"val/acc": 0.5}, 0.5)
    summary = summarize_sweep(sweep, show=False)
    assert "folds" not in summary.written and not (sweep / "summary_folds.csv").exists()
    assert "## Folds" not in (sweep / "summary.md").read_text()


@pytest.mark.slow
def test_a_sweep_over_folds_with_hydras_range_reports_each_metrics_mean_and_std(tmp_path):
    result = run_script(
        "train.py", "-m", "data.folds=2", "data.fold=range(2)", *FAST, "trainer.max_epochs=1", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [sweep] = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    jobs = [json.loads((sweep / str(number) / "results.json").read_text()) for number in (0, 1)]
    assert jobs[0]["split_sizes"]["test"] == jobs[1]["split_sizes"]["test"] == 269
    with open(sweep / "summary_folds.csv") as file:
        rows = {row["metric"]: row for row in csv.DictReader(file)}
    for metric in ("val/acc", "test/acc", "val/loss"):
        values = [job["metrics"][metric] for job in jobs]
        assert float(rows[metric]["mean"]) == pytest.approx(statistics.mean(values))
        assert float(rows[metric]["std"]) == pytest.approx(statistics.stdev(values))
        assert rows[metric]["folds"] == "2" and rows[metric]["jobs"] == "0 1"
    assert "Across folds (1 group of jobs that differ only in data.fold)" in result.stdout
