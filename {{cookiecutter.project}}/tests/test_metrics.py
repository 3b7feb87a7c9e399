"""Epoch metrics are means over images: a checkpoint scores the same at any batch size and under DDP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import open_dict

from {{ cookiecutter.package }}.evaluation import evaluate
from {{ cookiecutter.package }}.hydra_compat import VERSION_BASE
from {{ cookiecutter.package }}.training import train

from conftest import FAST, run_script

# Every test image, whatever the batch size (a batch limit would change which images are tested).
FULL_TEST = [arg for arg in FAST if "limit_test_batches" not in arg]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[Path, dict[str, float]]:
    """A trained checkpoint (2 short epochs) and the test metrics its training run reported."""
    from hydra import compose, initialize_config_dir

    from conftest import CONFIG_DIR

    run_dir = tmp_path_factory.mktemp("trained") / "run"
    with initialize_config_dir(config_dir=str(CONFIG_DIR), **VERSION_BASE):
        config = compose(config_name="train", overrides=[*FULL_TEST, "data.batch_size=32"])
    with open_dict(config):
        config.paths.output_dir = str(run_dir)
    results = train(config)
    return Path(results["best_checkpoint"]), results["metrics"]


def evaluate_at(compose_config, tmp_path: Path, checkpoint: Path, batch_size: int) -> dict[str, float]:
    config = compose_config([f"ckpt_path={checkpoint}", f"data.batch_size={batch_size}"], config_name="eval")
    config.paths.output_dir = str(tmp_path / f"batch_{batch_size}")
    return evaluate(config)["metrics"]


def test_test_loss_and_accuracy_do_not_depend_on_the_batch_size(compose_config, tmp_path, checkpoint):
    path, trained = checkpoint
    # 269 test images: batches of 7 end with one of 3, so a mean of batch means would differ.
    scores = {size: evaluate_at(compose_config, tmp_path, path, size) for size in (1, 7, 64)}
    for size, metrics in scores.items():
        assert metrics["test/loss"] == pytest.approx(trained["test/loss"], abs=1e-6), size
        assert metrics["test/acc"] == pytest.approx(trained["test/acc"], abs=1e-9), size


def test_test_loss_under_ddp_with_uneven_shards_equals_one_process(tmp_path, checkpoint):
    path, trained = checkpoint
    # 2 processes get 135 and 134 of the 269 images, in batches of 7: uneven last batches and shards.
    result = run_script("eval.py", f"ckpt_path={path}", "trainer=ddp_sim", "data.batch_size=7", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [results_file] = (tmp_path / "logs" / "eval").rglob("results.json")
    metrics = json.loads(results_file.read_text())["metrics"]
    assert metrics["test/loss"] == pytest.approx(trained["test/loss"], abs=1e-6)
    assert metrics["test/acc"] == pytest.approx(trained["test/acc"], abs=1e-9)
