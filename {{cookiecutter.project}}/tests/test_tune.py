"""tune.py: Lightning's finders on train.py's config, a rate that keeps the parameter groups' ratios, the
picture and the next command, and no training run touched."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from torch.optim.optimizer import register_optimizer_step_post_hook

from {{ cookiecutter.package }}.errors import ConfigurationError
from {{ cookiecutter.package }}.finders import short_number, steepest_fall
from {{ cookiecutter.package }}.tuning import tune

from conftest import FAST, read_results, run_script

# The shortest range test that can suggest a rate (Lightning skips its first 10 and last points).
SHORT_TEST = ["lr_find.num_training=13", "lr_find.min_lr=1e-5"]


def next_command(stdout: str) -> list[str]:
    [line] = [line for line in stdout.splitlines() if line.startswith("Next: ")]
    return shlex.split(line.removeprefix("Next: "))


def files_below(folder: Path) -> dict[Path, tuple[int, bytes]]:
    return {
        path: (path.stat().st_mtime_ns, path.read_bytes()) for path in folder.rglob("*") if path.is_file()
    }


def test_the_finder_draws_its_picture_and_prints_a_command_that_train_py_runs(tmp_path):
    tuned = run_script("tune.py", *FAST, *SHORT_TEST, "finetune=layer_decay", cwd=tmp_path)
    assert tuned.returncode == 0, tuned.stderr
    [tune_run] = (tmp_path / "logs" / "tune" / "runs").iterdir()
    picture = tune_run / "lr_find.png"
    assert picture.read_bytes().startswith(b"\x89PNG") and str(picture) in tuned.stdout
    [results] = read_results(tune_run)
    suggestion = results["lr_find"]["suggestion"]
    assert suggestion in results["lr_find"]["curve"]["lr"] and len(results["lr_find"]["curve"]["loss"]) == 13
    command = next_command(tuned.stdout)
    rate = results["found"]["optimizer.lr"]
    assert command == shlex.split(results["next_command"]) and command[1].endswith("train.py")
    assert command[-1] == f"optimizer.lr={rate}" and float(rate) == pytest.approx(suggestion, rel=0.05)
    assert "finetune=layer_decay" in command and not [arg for arg in command if arg.startswith("lr_find")]
    assert not (tmp_path / "logs" / "train").exists()

    trained = run_script(
        Path(command[1]).name, *command[2:], "trainer.max_epochs=1", "test=false", cwd=tmp_path
    )
    assert trained.returncode == 0, trained.stderr
    [train_results] = read_results(tmp_path / "logs" / "train")
    assert OmegaConf.load(Path(train_results["output_dir"]) / "config.yaml").optimizer.lr == float(rate)


def test_layer_decay_and_the_backbone_scale_keep_their_ratios_during_the_range_test(compose_config):
    config = compose_config(
        [*FAST, *SHORT_TEST, "finetune=layer_decay", "finetune.backbone_lr_scale=0.5"], config_name="tune"
    )
    steps: list[dict[str, tuple[float, float]]] = []

    def record(optimizer, args, kwargs) -> None:  # registered first, so it sees the rates of the step
        steps.append({group["name"]: (group["lr"], group["lr_scale"]) for group in optimizer.param_groups})

    handle = register_optimizer_step_post_hook(record)
    try:
        results = tune(config)
    finally:
        handle.remove()
    assert len(steps) == 13
    curve = results["lr_find"]["curve"]["lr"]
    for step, finder_rate in zip(steps, curve, strict=True):
        scales = {scale for _, scale in step.values()}
        assert len(scales) > 3 and min(scales) < 0.5  # layer decay times the backbone's 0.5
        for name, (rate, scale) in step.items():
            # The finder's rate is optimizer.lr: the classifier's, whose scale is 1.
            assert rate == pytest.approx(finder_rate * scale, rel=1e-6), name
    suggestion = results["lr_find"]["suggestion"]
    rates = results["lr_find"]["group_rates"]
    assert {rate for name, rate in rates.items() if name.startswith("head")} == {suggestion}
    assert rates["backbone/layer_0"] == pytest.approx(suggestion * 0.75**5 * 0.5)
    assert results["next_command"] == f"python train.py optimizer.lr={short_number(suggestion)}"


def test_the_batch_size_finder_prints_data_batch_size_within_the_training_split(compose_config, capsys):
    # Digits 0 and 1: about 250 training images, fewer than the batch the doubling would reach.
    overrides = [*FAST, "data.classes=[0,1]", "find_batch_size=true", "find_lr=false"]
    sizes = [
        "scale_batch_size.init_val=64",
        "scale_batch_size.max_trials=4",
        "scale_batch_size.steps_per_trial=1",
    ]
    results = tune(compose_config([*overrides, *sizes], config_name="tune"))
    found = results["scale_batch_size"]
    # 64 and 128 trained; 256 would pass the bound, each process's share of the training split.
    assert found["batch_size"] == 128 and 128 < found["max_val"] < 256 and found["max_trials"] == 2
    assert results["next_command"].endswith(f"data.batch_size={found['batch_size']}")
    assert f"data.batch_size={found['batch_size']}" in capsys.readouterr().out


def test_the_suggestion_is_the_steepest_fall_per_decade_of_rate():
    import numpy as np

    # A loss that falls fastest at 1e-3 on a log axis, as range tests look on the picture.
    rates = np.logspace(-8, 0, 100)
    losses = 2.3 - 1.0 * np.tanh(np.log10(rates) + 3) + 0.5 * (rates > 0.1)
    suggestion = steepest_fall(list(rates), list(losses), logarithmic=True)
    assert suggestion == pytest.approx(1e-3, rel=0.25)
    # Per unit of rate (Lightning's suggestion) the steepest fall lies far below it.
    assert steepest_fall(list(rates), list(losses), logarithmic=False) < 1e-4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["lr_find.min_lr=0.1", "lr_find.max_lr=0.01"], "lr_find.min_lr=0.1 >= lr_find.max_lr=0.01"),
        (["lr_find.num_training=0"], "lr_find.num_training=0 must be at least 13"),
        (["lr_find.max_lr=abc"], "lr_find.max_lr='abc' is not a number"),
        (["lr_find.mode=cosine"], "lr_find.mode='cosine': use exponential or linear"),
        (["find_lr=false"], "find_lr=false and find_batch_size=false: nothing to find"),
        (["ckpt_path=last.ckpt"], "ckpt_path=last.ckpt: tune.py finds settings for a new training run"),
    ],
)
def test_bad_finder_settings_are_refused_before_anything_is_written(
    compose_config, tmp_path, overrides, message
):
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        tune(compose_config([*FAST, *overrides], config_name="tune"))
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_tune_leaves_a_training_run_directory_byte_for_byte_as_it_was(tmp_path):
    trained = run_script("train.py", *FAST, "trainer.max_epochs=1", "test=false", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    [run_dir] = (tmp_path / "logs" / "train" / "runs").iterdir()
    last = run_dir / "checkpoints" / "last.ckpt"
    (run_dir / "results.json").unlink()  # a run stopped before its end: one that resume=auto continues
    before = files_below(tmp_path / "logs" / "train")
    # Paths that point a run at the training run: refused before Hydra writes anything there.
    for paths in (
        [f"hydra.run.dir={run_dir}", f"ckpt_path={last}"],
        [f"hydra.run.dir={run_dir}", "resume=auto"],
    ):
        refused = run_script("tune.py", *FAST, *SHORT_TEST, *paths, cwd=tmp_path)
        assert refused.returncode == 1 and "tune.py finds settings for a new training run" in refused.stderr
    tuned = run_script("tune.py", *FAST, *SHORT_TEST, "find_batch_size=true", cwd=tmp_path)
    assert tuned.returncode == 0, tuned.stderr
    assert files_below(tmp_path / "logs" / "train") == before
    # Lightning's finders save the model's start in their own run's directory, and remove it.
    assert not [path for path in tmp_path.rglob(".*.ckpt")]
