"""Bad input ends with one line naming the value and the fix, exit status 1, and no run directory."""

from __future__ import annotations

import copy
import functools
import importlib.util
import logging
import re
from pathlib import Path

import pytest
import torch

from {{ cookiecutter.package }}.errors import ConfigurationError
from {{ cookiecutter.package }}.training import train

from conftest import CONFIG_DIR, FAST, read_results, run_script


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A real checkpoint of this project, the same file cut short, and a plain state dict."""
    folder = tmp_path_factory.mktemp("files")
    result = run_script("train.py", *FAST, "trainer.max_epochs=1", "test=false", cwd=folder)
    assert result.returncode == 0, result.stderr
    [results] = read_results(folder / "logs")
    last = Path(results["last_checkpoint"])
    (folder / "truncated.ckpt").write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    torch.save({"conv.weight": torch.zeros(2, 2)}, folder / "state_dict.pt")
    return {"last": last, "truncated": folder / "truncated.ckpt", "state_dict": folder / "state_dict.pt"}


def wandb_online_case() -> tuple[dict[str, str], str]:
    if importlib.util.find_spec("wandb") is None:
        return {}, "logger=wandb needs the wandb package"
    return {"WANDB_MODE": "online", "WANDB_API_KEY": ""}, "WANDB_MODE=online, but wandb has no API key"


# (script, overrides, expected part of the message); {last}, {truncated}, {state_dict} name the files above.
BAD_INPUTS = [
    ("train.py", ["trainer.max_epochs=abc"], "trainer.max_epochs='abc' is not a whole number; set e.g."),
    ("train.py", ["seed=abc"], "seed='abc' is not a whole number; set e.g. seed=42"),
    ("train.py", ["seed=-1"], "seed=-1 must be at least 0; set e.g. seed=42"),
    ("train.py", ["data.batch_size=3.5"], "data.batch_size=3.5 is not a whole number; set e.g."),
    (
        "train.py",
        ["model.drop_rate=2"],
        "model.drop_rate=2 must be from 0 to below 1; set e.g. model.drop_rate=0.1",
    ),
    (
        "train.py",
        ["trainer.accumulate_grad_batches=0"],
        "trainer.accumulate_grad_batches=0 must be at least 1",
    ),
    ("train.py", ["model.label_smoothing=1.0"], "model.label_smoothing=1.0 must be from 0 to below 1"),
    ("train.py", ["optimizer.weight_decay=-0.1"], "optimizer.weight_decay=-0.1 must be at least 0"),
    (
        "train.py",
        ["callbacks.early_stopping.monitor=val/acc_typo"],
        "callbacks.early_stopping.monitor='val/acc_typo' is not a metric this run logs; use one of",
    ),
    (
        "train.py",
        ["callbacks.model_checkpoint.monitor=val/accuracy"],
        "callbacks.model_checkpoint.monitor='val/accuracy' is not a metric this run logs",
    ),
    (
        "train.py",
        ["scheduler=plateau", "scheduler.monitor=val_acc"],
        "scheduler.monitor='val_acc' is not a metric",
    ),
    ("train.py", ["trainer.accelerator=tpu"], "Invalid trainer settings"),
    ("train.py", ["logger=wandb"], "wandb"),  # the message depends on whether wandb is installed
    (
        "train.py",
        ["ckpt_path={truncated}"],
        "cannot be read as a checkpoint (truncated, or not a PyTorch file",
    ),
    ("train.py", ["ckpt_path={state_dict}"], "is not a checkpoint of this project"),
    ("train.py", ["ckpt_path={last}", "model.backbone=test_vit"], "was trained with backbone 'test_resnet'"),
    ("train.py", ["ckpt_path={last}", "data.classes=[0,1,2]"], "was trained with class_names"),
    ("train.py", ["resume=yes"], "resume='yes': use resume=auto"),
    ("train.py", ["model.class_weights=[1,2]"], "model.class_weights has 2 weights, the data has 10 classes"),
    ("train.py", ["model.class_weights=[-1,1,1,1,1,1,1,1,1,1]"], "must be at least 0 and not all 0"),
    ("train.py", ["model.class_weights=balanced"], "model.class_weights='balanced' is not a list of numbers"),
    ("train.py", ["model.loss=focall"], "model.loss='focall' is not a loss we have"),
    ("train.py", ["model.gamma=-1"], "model.gamma=-1 must be at least 0"),
    ("train.py", ["temperature_scaling=maybe"], "temperature_scaling='maybe' is not a boolean"),
    (
        "train.py",
        ["+optimiser=sgd"],
        "+optimiser=sgd: train.yaml has no setting 'optimiser', so it would be added and never used; "
        "did you mean 'optimizer'?",
    ),
    ("eval.py", ["ckpt_path={last}", "++seeds=3"], "++seeds=3: eval.yaml has no setting 'seeds'"),
    ("train.py", ["paths.log_dir={state_dict}/logs"], "Cannot write the run directory"),
    ("eval.py", [], "ckpt_path is not set (??? in the config); add ckpt_path=... to the command"),
    ("eval.py", ["ckpt_path={truncated}"], "cannot be read as a checkpoint"),
    ("eval.py", ["ckpt_path={state_dict}"], "is not a checkpoint of this project"),
    ("train.py", ["test=maybe"], "test='maybe' is not a boolean; use true or false (also yes/no"),
    ("train.py", ["model.pretrained=perhaps"], "model.pretrained='perhaps' is not a boolean"),
    ("eval.py", ["ckpt_path={last}", "keep_freed_memory=sometimes"], "keep_freed_memory='sometimes' is not"),
    (
        "train.py",
        ["optimizer.lr=nan"],
        "optimizer.lr=nan is not a finite number; set e.g. optimizer.lr=0.002",
    ),
    ("train.py", ["model.label_smoothing=-inf"], "model.label_smoothing=-inf is not a finite number"),
    ("train.py", ["callbacks.early_stopping.patience=abc"], "patience='abc' is not a number; set e.g."),
    (
        "train.py",
        ["hparams_search=optuna"],
        "hparams_search=optuna is a search over many runs, which needs -m",
    ),
    (
        "eval.py",
        ["ckpt_path={last}", "data.image_size=64"],
        "data.image_size=64: the checkpoint fixes the preprocessing (image_size=32)",
    ),
    ("train.py", ["optimizer.lr=1e20"], "Training diverged: the training loss became nan at epoch 0, step"),
    ("eval.py", ["ckpt_path={last}", "flip_tta=maybe"], "flip_tta='maybe' is not a boolean"),
    ("tune.py", ["lr_find.min_lr=0.1", "lr_find.max_lr=0.01"], "lr_find.min_lr=0.1 >= lr_find.max_lr=0.01"),
    ("tune.py", ["lr_find.min_lr=0"], "lr_find.min_lr=0 must be above 0 for an exponential range"),
    ("tune.py", ["lr_find.num_training=0"], "lr_find.num_training=0 must be at least 13; set e.g."),
    ("tune.py", ["lr_find.max_lr=abc"], "lr_find.max_lr='abc' is not a number; set e.g. lr_find.max_lr=1.0"),
    ("tune.py", ["lr_find.early_stop_threshold=0.5"], "lr_find.early_stop_threshold=0.5 must be at least 1"),
    ("tune.py", ["lr_find.mode=cosine"], "lr_find.mode='cosine': use exponential or linear"),
    ("tune.py", ["find_batch_size=maybe"], "find_batch_size='maybe' is not a boolean"),
    ("tune.py", ["find_lr=false"], "find_lr=false and find_batch_size=false: nothing to find"),
    ("tune.py", ["scale_batch_size.max_trials=0"], "scale_batch_size.max_trials=0 must be at least 1"),
    ("tune.py", ["scale_batch_size.mode=bisect"], "scale_batch_size.mode='bisect': use power or binsearch"),
    ("tune.py", ["ckpt_path={last}"], "tune.py finds settings for a new training run and continues none"),
    ("tune.py", ["resume=auto"], "resume=auto: tune.py finds settings for a new training run"),
    ("tune.py", ["debug=fdr"], "trainer.fast_dev_run is set (debug=fdr): Lightning's finders skip"),
    ("train.py", ["data.folds=abc"], "data.folds='abc' is not a whole number; set e.g. data.folds=5"),
    ("train.py", ["data.folds=5", "data.fold=abc"], "data.fold='abc' is not a whole number; set e.g."),
    ("train.py", ["data.folds=1"], "data.folds=1 must be at least 2; set e.g. data.folds=5"),
    ("train.py", ["data.folds=5", "data.fold=-1"], "data.fold=-1 must be at least 0; set e.g. data.fold=0"),
    (
        "train.py",
        ["data.folds=5", "data.fold=5"],
        "data.fold=5 is not a fold of data.folds=5: they are numbered 0 to 4; set e.g. data.fold=0",
    ),
    (
        "train.py",
        ["data.fold=0"],  # the default value, but given: a sweep over data.fold without data.folds
        "data.fold=0 is set but data.folds is null (no cross-validation); set e.g. data.folds=5",
    ),
    (
        "train.py",
        ["data.folds=200"],
        "image(s) outside the test split, too few for 200 stratified folds (each fold needs an image",
    ),
]


TASKS = ("train", "eval", "tune", "predict", "export", "report", "serve")


def composed(task: str, overrides: list[str] = ()):
    """configs/<task>.yaml composed with `overrides` (a copy: tests may change it)."""
    return copy.deepcopy(composed_once(task, tuple(overrides)))


@functools.cache
def composed_once(task: str, overrides: tuple[str, ...]):
    from hydra import compose, initialize_config_dir

    from {{ cookiecutter.package }}.hydra_compat import VERSION_BASE

    with initialize_config_dir(config_dir=str(CONFIG_DIR), **VERSION_BASE):
        return compose(config_name=task, overrides=list(overrides))


def keys_by_default_type(kind: type) -> list[tuple[str, str]]:
    """(task, key) for every key of every task's config whose default is of type `kind`."""
    from {{ cookiecutter.package }}.run.given_values import leaves, plain, takes_words

    return [
        (task, key)
        for task in TASKS
        for key, value in leaves(plain(composed(task)))
        if type(value) is kind and not takes_words(key)  # Lightning's few that also take words
    ]


BOOLEAN_KEYS = keys_by_default_type(bool)
NUMBER_KEYS = keys_by_default_type(int) + keys_by_default_type(float)


def test_every_task_has_boolean_and_number_keys_to_check():
    assert {"train", "eval", "predict", "export", "report", "serve"} <= {task for task, _ in BOOLEAN_KEYS}
    assert ("train", "test") in BOOLEAN_KEYS and ("predict", "flip_tta") in BOOLEAN_KEYS
    assert ("train", "optimizer.lr") in NUMBER_KEYS and ("serve", "port") in NUMBER_KEYS
    assert ("tune", "find_batch_size") in BOOLEAN_KEYS and ("tune", "lr_find.max_lr") in NUMBER_KEYS


@pytest.mark.parametrize(
    ("word", "meaning"),
    [
        ("false", False),
        ("no", False),
        ("NO", False),
        ("off", False),
        ("n", False),
        ("0", False),
        ("yes", True),
        ("On", True),
        ("Y", True),
        ("1", True),
        ("true", True),
    ],
)
def test_hydra_gives_boolean_words_as_typed_and_the_rule_reads_them_as_yaml_does(word, meaning):
    from {{ cookiecutter.package }}.run.given_values import check_given_types

    config = composed("train", [f"test={word}"])
    check_given_types(config, composed_once("train", ()))
    assert config.test is meaning


@pytest.mark.parametrize(("task", "key"), BOOLEAN_KEYS, ids=[f"{task}/{key}" for task, key in BOOLEAN_KEYS])
@pytest.mark.parametrize("word", ["no", "On", "maybe", "2", "[true]"])
def test_every_boolean_key_takes_what_yaml_reads_as_a_boolean_and_refuses_the_rest(task, key, word):
    from omegaconf import OmegaConf, open_dict

    from {{ cookiecutter.package }}.run.given_values import check_given_types

    defaults = composed_once(task, ())  # read only: no copy
    config = composed(task)
    given = 2 if word == "2" else [True] if word == "[true]" else word  # as Hydra's parser types them
    with open_dict(config):
        OmegaConf.update(config, key, given, merge=False)
    if word in ("maybe", "2", "[true]"):
        with pytest.raises(
            ConfigurationError, match=re.escape(f"{key}={given!r} is not a boolean; use true or")
        ):
            check_given_types(config, defaults)
    else:
        check_given_types(config, defaults)
        assert OmegaConf.select(config, key) is (word == "On")


@pytest.mark.parametrize(("task", "key"), NUMBER_KEYS, ids=[f"{task}/{key}" for task, key in NUMBER_KEYS])
@pytest.mark.parametrize("value", [float("nan"), float("-inf")], ids=str)
def test_nan_and_inf_are_refused_for_every_number(task, key, value):
    from omegaconf import OmegaConf

    from {{ cookiecutter.package }}.run.given_values import check_finite_numbers

    defaults = composed_once(task, ())  # read only: no copy
    config = composed(task)
    OmegaConf.update(config, key, value, merge=False)
    with pytest.raises(
        ConfigurationError, match=re.escape(f"{key}={value} is not a finite number; set e.g.")
    ):
        check_finite_numbers(config, defaults)


@pytest.mark.parametrize("given", ["nan", "inf", "-inf", "NaN"])
def test_hydra_reads_nan_and_inf_as_numbers_that_the_rule_refuses(given):
    from {{ cookiecutter.package }}.run.given_values import check_finite_numbers

    with pytest.raises(ConfigurationError, match=r"optimizer.weight_decay=.* is not a finite number"):
        check_finite_numbers(composed("train", [f"optimizer.weight_decay={given}"]))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("callbacks.early_stopping.patience=abc", "callbacks.early_stopping.patience='abc' is not a number"),
        ("callbacks.model_checkpoint.save_top_k=[1]", "save_top_k=[1] is not a number; set e.g."),
        ("scheduler.min_lr=true", "scheduler.min_lr=True is not a number"),
        ("trainer.devices=auto", None),  # Lightning's devices take words
        ("trainer.deterministic=warn", None),  # and so do these two booleans
        ("callbacks.model_checkpoint.save_last=link", None),
        ("model.drop_path_rate=0.1", None),  # null by default: no type to hold it to
        ("optimizer.lr=${optimizer.weight_decay}", None),  # judged once resolved, by the range check
    ],
)
def test_a_number_setting_refuses_words_and_lists(override, message):
    from {{ cookiecutter.package }}.run.given_values import check_given_types

    config = composed("train", [override])
    if message is None:
        check_given_types(config, composed_once("train", ()))
    else:
        with pytest.raises(ConfigurationError, match=re.escape(message)):
            check_given_types(config, composed_once("train", ()))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["scheduler.min_lr=-1"], "scheduler.min_lr=-1 must be at least 0"),
        (["scheduler.warmup_lr=-1e-5"], "scheduler.warmup_lr=-1e-05 must be at least 0"),
        (
            ["model.mixup.mixup_alpha=-1", "model.mixup.prob=1.0"],
            "model.mixup.mixup_alpha=-1 must be at least 0",
        ),
        (["trainer.min_epochs=3", "trainer.max_epochs=1"], "trainer.min_epochs=3 > trainer.max_epochs=1"),
    ],
)
def test_settings_that_trained_silently_or_blamed_another_key_are_refused(compose_config, overrides, message):
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        train(compose_config([*FAST, *overrides]))


def test_a_run_directory_given_as_the_checkpoint_names_a_checkpoint_in_it(tmp_path):
    from {{ cookiecutter.package }}.run.checkpoints import read_checkpoint

    (tmp_path / "checkpoints").mkdir()
    for name in ("epoch_003.ckpt", "last.ckpt"):
        (tmp_path / "checkpoints" / name).write_bytes(b"")
    with pytest.raises(
        ConfigurationError,
        match=re.escape(
            f"is a folder; give a checkpoint file; e.g. ckpt_path={tmp_path}/checkpoints/last.ckpt"
        ),
    ):
        read_checkpoint("ckpt_path", tmp_path)


@pytest.mark.slow
def test_test_no_means_no_test(tmp_path):
    result = run_script("train.py", *FAST, "trainer.max_epochs=1", "test=no", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [results] = read_results(tmp_path / "logs")
    assert results["metrics"] and not [name for name in results["metrics"] if name.startswith("test/")]


def fill(overrides: list[str], files: dict[str, Path]) -> list[str]:
    return [override.format(**files) for override in overrides]


@pytest.mark.slow
@pytest.mark.parametrize(("script", "overrides", "message"), BAD_INPUTS, ids=lambda v: str(v)[:40])
def test_bad_input_is_one_line_with_exit_status_1_and_leaves_no_run_directory(
    tmp_path, files, script, overrides, message
):
    env = wandb_online_case()[0] if "logger=wandb" in overrides else {}
    if "logger=wandb" in overrides:
        message = wandb_online_case()[1]
    fast = FAST if script in ("train.py", "tune.py") else []
    result = run_script(script, *fast, *fill(overrides, files), cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not list((tmp_path / "logs").glob("*/runs/*")), "a refused run left its directory behind"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [(overrides, message) for script, overrides, message in BAD_INPUTS if script == "train.py"][:11],
)
def test_bad_settings_are_refused_in_process_before_training(compose_config, overrides, message):
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        train(compose_config([*FAST, *overrides]))


def test_a_refused_run_touches_nothing_in_the_directory_it_refused(tmp_path):
    first = run_script("train.py", *FAST, "trainer.max_epochs=1", "hydra.run.dir=run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = {
        path: (path.stat().st_mtime_ns, path.read_bytes())
        for path in (tmp_path / "run").rglob("*")
        if path.is_file()
    }
    again = run_script("train.py", *FAST, "trainer.max_epochs=1", "hydra.run.dir=run", cwd=tmp_path)
    assert again.returncode == 1 and "already holds the results of a finished run" in again.stderr
    after = {
        path: (path.stat().st_mtime_ns, path.read_bytes())
        for path in (tmp_path / "run").rglob("*")
        if path.is_file()
    }
    assert after == before


@pytest.mark.parametrize("checkpoints", [["epoch_000.ckpt"], ["epoch_000.ckpt", "last.ckpt"]])
def test_a_directory_with_another_runs_checkpoints_is_refused_offering_resume_only_with_a_last_ckpt(
    tmp_path, checkpoints
):
    from {{ cookiecutter.package }}.run.directory import check_output_dir_is_new

    (tmp_path / "checkpoints").mkdir()
    for name in checkpoints:
        (tmp_path / "checkpoints" / name).write_bytes(b"")
    with pytest.raises(ConfigurationError, match="already holds the checkpoints of another run") as refused:
        check_output_dir_is_new(tmp_path)
    assert ("resume=auto" in str(refused.value)) == ("last.ckpt" in checkpoints)


def test_a_zero_learning_rate_is_warned_about(compose_config, caplog):
    train(compose_config([*FAST, "optimizer.lr=0", "trainer.max_epochs=1", "test=false"]))
    assert "optimizer.lr=0: no weight will change" in caplog.text


def test_early_stopping_says_that_it_ended_the_run(compose_config, caplog):
    caplog.set_level(logging.INFO)
    # An improvement of 1.0 in accuracy is impossible, so the run stops after `patience` epochs.
    overrides = [*FAST, "trainer.max_epochs=5", "callbacks.early_stopping.patience=1"]
    results = train(compose_config([*overrides, "callbacks.early_stopping.min_delta=1.0", "test=false"]))
    assert results["epochs"] < 5
    assert (
        "Early stopping ended the run after epoch 2 of 5: val/acc did not improve for 1 epochs" in caplog.text
    )


def test_a_bad_value_fails_only_its_own_sweep_job(tmp_path):
    result = run_script("train.py", "-m", *FAST, "trainer.max_epochs=1", "optimizer.lr=-1,1e-3", cwd=tmp_path)
    assert result.returncode != 0  # Hydra reports the failed job once the sweep is over
    sweep = next((tmp_path / "logs" / "train" / "multiruns").iterdir())
    assert (sweep / "1" / "results.json").is_file()  # the job after the failed one still ran
    failure = (sweep / "0" / "failure.json").read_text()
    assert "optimizer.lr=-1 must be at least 0" in failure and '"user_error": true' in failure
    assert "optimizer.lr=-1 must be at least 0" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("message", "hinted"),
    [
        ("output_dir='x' already holds an export", False),  # "output" holds "tpu"
        ("CUDA is not available on this machine", True),
        ("trainer.devices=2 but the machine has 1 GPU", True),
    ],
)
def test_only_errors_about_devices_end_with_the_trainer_preset_hint(capsys, message, hinted):
    from {{ cookiecutter.package }}.run.command import exit_with_message

    with pytest.raises(SystemExit):
        exit_with_message(ConfigurationError(message))
    assert ("Check that the trainer preset fits this machine" in capsys.readouterr().err) == hinted


def test_a_sweep_over_a_misspelled_added_key_is_refused_before_any_job(tmp_path):
    result = run_script("train.py", "-m", "+optimiser=sgd,adam", *FAST, cwd=tmp_path)
    assert result.returncode == 1
    assert "Error: +optimiser=sgd,adam: train.yaml has no setting 'optimiser'" in result.stderr
    assert not list((tmp_path / "logs").glob("*/multiruns/*/*/results.json"))
