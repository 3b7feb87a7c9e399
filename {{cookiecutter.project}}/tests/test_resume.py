"""A stopped run resumes exactly: killed (SIGKILL), preempted (SIGTERM) or resumed by resume=auto."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException

from {{ cookiecutter.package }}.run.process import configure_process
from {{ cookiecutter.package }}.run.task import build_trainer, instantiate_callbacks
from {{ cookiecutter.package }}.training import build_datamodule_and_model, train

from conftest import FAST, PROJECT_ROOT, read_results, write_image_folder

# 3 epochs of 6 batches, dropout and mixup on: every source of randomness a resume must repeat.
RESUMABLE = [
    *(arg for arg in FAST if "limit_train_batches" not in arg and "max_epochs" not in arg),
    "+trainer.limit_train_batches=6",
    "trainer.max_epochs=3",
    "model.drop_rate=0.3",
    "model.mixup.prob=0.5",
    "data.batch_size=32",
]
# A checkpoint every 2 steps, all kept, so a test can resume from one taken mid-epoch.
EVERY_2_STEPS = [
    "callbacks.periodic_checkpoint.train_time_interval=null",
    "+callbacks.periodic_checkpoint.every_n_train_steps=2",
    "callbacks.periodic_checkpoint.save_top_k=-1",
    "callbacks.periodic_checkpoint.filename='step_{step}'",
    "+callbacks.periodic_checkpoint.auto_insert_metric_name=false",
]


def final_state(results: dict) -> tuple[float, dict[str, torch.Tensor]]:
    """The last validation loss and the final weights of a run."""
    state = torch.load(results["last_checkpoint"], weights_only=True)["state_dict"]
    return results["metrics"]["val/loss"], state


def assert_same_training(first: dict, second: dict) -> None:
    (loss, weights), (other_loss, other_weights) = final_state(first), final_state(second)
    assert other_loss == pytest.approx(loss, abs=1e-6)
    assert weights.keys() == other_weights.keys()
    assert max((weights[k].float() - other_weights[k].float()).abs().max().item() for k in weights) <= 1e-6


@pytest.mark.parametrize("data", ["digits", "image_folder"])
def test_resuming_from_a_mid_epoch_checkpoint_repeats_the_uninterrupted_run(compose_config, tmp_path, data):
    overrides = [*RESUMABLE, *EVERY_2_STEPS, "test=false"]
    if data == "image_folder":
        root = write_image_folder(tmp_path / "images", {"a": 90, "b": 90, "c": 90}, size=(20, 16))
        # Random augmentation in 2 loader worker processes: each image's draws come from its own seed.
        overrides += ["data=image_folder", f"data.root={root}", "data.image_size=16"]
        overrides += ["data.augment=randaugment"]
        overrides += ["data.num_workers=2", "data.batch_size=32"]
    uninterrupted = train(compose_config(overrides))
    mid_epoch = Path(uninterrupted["output_dir"]) / "checkpoints" / "step_8.ckpt"  # epoch 1, batch 2 of 6
    assert torch.load(mid_epoch, weights_only=True)["epoch"] == 1

    config = compose_config([*overrides, f"ckpt_path={mid_epoch}"])
    config.paths.output_dir = str(tmp_path / "resumed")
    resumed = train(config)
    assert resumed["epochs"] == uninterrupted["epochs"] == 3
    assert_same_training(uninterrupted, resumed)


def test_the_resume_test_can_tell_runs_apart(compose_config, tmp_path):
    """Guards the test above: a run that differs only in its seed ends elsewhere."""
    first = train(compose_config([*RESUMABLE, "test=false"]))
    config = compose_config([*RESUMABLE, "test=false", "seed=7"])
    config.paths.output_dir = str(tmp_path / "other")
    with pytest.raises(AssertionError):
        assert_same_training(first, train(config))


class Interrupt(Callback):
    """At one batch of one stage ("train" or "validate") and epoch, does `action(trainer)`; records
    every validation's val/loss by epoch. (Plain callbacks run before checkpoint callbacks.)"""

    def __init__(self, stage: str = "", epoch: int = -1, batch: int = -1, action=None) -> None:
        self.at, self.action = (stage, epoch, batch), action
        self.val_losses: dict[int, float] = {}

    def _maybe(self, trainer, stage: str, batch_idx: int) -> None:
        if (stage, trainer.current_epoch, batch_idx) == self.at and not trainer.sanity_checking:
            self.action(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._maybe(trainer, "train", batch_idx)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self._maybe(trainer, "validate", batch_idx)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.val_losses[trainer.current_epoch] = trainer.callback_metrics["val/loss"].item()


def send_sigterm(trainer) -> None:
    """As a cluster does before preempting the job (Lightning's handler notes it, training goes on)."""
    os.kill(os.getpid(), signal.SIGTERM)


def fit_in(config, output_dir: Path, callback: Callback, ckpt_path: Path | None = None) -> torch.nn.Module:
    """Fit like train.py, in `output_dir`; return the model (also when a SIGTERM stopped the fit)."""
    config.paths.output_dir = str(output_dir)
    configure_process(config)
    datamodule, model = build_datamodule_and_model(config)
    callbacks = [*instantiate_callbacks(config.callbacks).values(), callback]
    trainer = build_trainer(config, callbacks, loggers=[])
    with contextlib.suppress(SIGTERMException, SystemExit):  # Lightning exits with status 1 after SIGTERM
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    return model


def max_difference(first: torch.nn.Module, second: torch.nn.Module) -> float:
    return max(
        (a - b).abs().max().item()
        for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize(
    "case",
    [
        "sigterm inside an accumulation window",
        "sigterm during validation with ema",
        "periodic write due mid-window",
    ],
)
def test_a_stop_where_a_checkpoint_would_not_resume_exactly_waits_for_one_that_does(
    compose_config, tmp_path, case
):
    overrides = [*RESUMABLE, "test=false", "callbacks.early_stopping=null"]
    if case == "sigterm during validation with ema":
        overrides += ["ema=enabled", "callbacks.ema.update_starting_at_step=0", "callbacks.ema.decay=0.5"]
        stop = Interrupt("validate", 0, 0, send_sigterm)  # the first of 2 validation batches
    elif case == "sigterm inside an accumulation window":
        overrides += ["trainer.accumulate_grad_batches=2"]
        stop = Interrupt("train", 1, 2, send_sigterm)  # batches 2-3 of 6 make one optimizer step
    else:
        overrides += ["trainer.accumulate_grad_batches=2", "callbacks.periodic_checkpoint.filename=periodic"]

        def thirty_minutes_pass(trainer) -> None:
            [periodic] = [c for c in trainer.checkpoint_callbacks if getattr(c, "filename", "") == "periodic"]
            periodic._last_time_checked -= 3600  # its 30-minute interval has passed

        stop = Interrupt("train", 1, 2, thirty_minutes_pass)
    uninterrupted, record = Interrupt(), Interrupt()
    expected = fit_in(compose_config(overrides), tmp_path / "uninterrupted", uninterrupted)
    fit_in(compose_config(overrides), tmp_path / "stopped", stop)
    last = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    if case == "periodic write due mid-window":  # resume from the periodic write, not the final one
        last = tmp_path / "stopped" / "checkpoints" / "periodic.ckpt"
    resumed = fit_in(compose_config(overrides), tmp_path / "resumed", record, ckpt_path=last)
    assert max_difference(expected, resumed) <= 1e-6
    # Every epoch validated once, on all its batches, with the same weights as in the uninterrupted run.
    assert record.val_losses == pytest.approx(
        {epoch: loss for epoch, loss in uninterrupted.val_losses.items() if epoch in record.val_losses},
        abs=1e-6,
    )
    assert min(record.val_losses) == torch.load(last, weights_only=True)["epoch"]


class BestSoFar(Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        self.score, self.path = (
            trainer.checkpoint_callback.best_model_score,
            trainer.checkpoint_callback.best_model_path,
        )


def test_a_run_continued_in_a_new_directory_keeps_the_best_epoch_so_far_without_touching_the_first_run(
    compose_config, tmp_path, recwarn
):
    overrides = [*RESUMABLE, *EVERY_2_STEPS, "test=false", "callbacks.early_stopping=null"]
    first = train(compose_config(overrides))
    checkpoints = Path(first["output_dir"]) / "checkpoints"
    mid_epoch = checkpoints / "step_14.ckpt"  # epoch 2, after the validations of epochs 0 and 1
    state = torch.load(mid_epoch, weights_only=True)["callbacks"]
    [saved] = [s for s in state.values() if s.get("monitor") == "val/acc"]
    files_before = {path.name: path.stat().st_mtime_ns for path in checkpoints.iterdir()}

    best_so_far = BestSoFar()
    fit_in(compose_config(overrides), tmp_path / "continued", best_so_far, ckpt_path=mid_epoch)
    assert best_so_far.score == saved["best_model_score"]
    assert Path(best_so_far.path).parent == tmp_path / "continued" / "checkpoints"
    assert Path(best_so_far.path).name == Path(saved["best_model_path"]).name
    assert {path.name: path.stat().st_mtime_ns for path in checkpoints.iterdir()} == files_before
    # Nor does Lightning warn that scores were not restored.
    assert not [w for w in recwarn if "dirpath has changed" in str(w.message)]


def start_training(cwd: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "train.py"), *overrides],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_step(run_dirs: Path, step: int, process: subprocess.Popen, timeout: float = 300) -> Path:
    """Wait until an unfinished run's last.ckpt holds at least `step` optimizer steps; return that file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be stopped"
        for last in run_dirs.glob("*/checkpoints/last.ckpt"):
            if (last.parent.parent / "results.json").exists():
                continue
            try:  # written atomically: a file that exists is whole
                if torch.load(last, weights_only=True, map_location="cpu")["global_step"] >= step:
                    return last
            except (RuntimeError, EOFError, KeyError, FileNotFoundError):
                pass
        time.sleep(0.05)
    raise TimeoutError(f"no last.ckpt with step {step} in {run_dirs}")


# Slow enough per step (resnet10t) that the process is still training when the signal arrives.
CLI_RUN = [
    "model.backbone=resnet10t",
    "trainer.max_epochs=3",
    "+trainer.limit_train_batches=12",
    "trainer.log_every_n_steps=1",
    "~callbacks.progress_bar",
    "~callbacks.model_summary",
    "model.drop_rate=0.3",
    "callbacks.periodic_checkpoint.train_time_interval=null",
    "+callbacks.periodic_checkpoint.every_n_train_steps=3",
]


@pytest.mark.slow
@pytest.mark.parametrize("data", ["digits", "image_folder"])
def test_a_run_killed_mid_epoch_resumes_from_last_ckpt_to_the_same_weights(tmp_path, data):
    overrides = list(CLI_RUN)
    if data == "image_folder":
        root = write_image_folder(tmp_path / "images", {"a": 80, "b": 80, "c": 80}, size=(24, 20))
        overrides += [
            "data=image_folder",
            f"data.root={root}",
            "data.image_size=24",
            "data.augment=randaugment",
        ]
        overrides += ["data.batch_size=16"]
    uninterrupted = start_training(tmp_path, *overrides, "hydra.run.dir=uninterrupted")
    assert uninterrupted.wait() == 0, uninterrupted.stderr.read()

    killed = start_training(tmp_path, *overrides, "hydra.run.dir=runs/killed")
    last = wait_for_step(tmp_path / "runs", 15, killed)  # epoch 1 (steps 12-23), mid-epoch
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    step = torch.load(last, weights_only=True)["global_step"]
    assert 12 < step < 24 and step % 12, "the kill should land mid-epoch 2 of 3"

    resumed = start_training(tmp_path, *overrides, f"ckpt_path={last}", "hydra.run.dir=resumed")
    assert resumed.wait() == 0, resumed.stderr.read()
    [first] = read_results(tmp_path / "uninterrupted")
    [second] = read_results(tmp_path / "resumed")
    assert_same_training(first, second)
    assert second["metrics"]["test/acc"] == first["metrics"]["test/acc"]


@pytest.mark.slow
def test_sigterm_saves_last_ckpt_and_resume_auto_continues_that_run_in_its_directory(tmp_path):
    uninterrupted = start_training(tmp_path, *CLI_RUN)
    assert uninterrupted.wait() == 0, uninterrupted.stderr.read()
    [finished] = read_results(tmp_path / "logs")

    stopped = start_training(tmp_path, *CLI_RUN)
    wait_for_step(tmp_path / "logs" / "train" / "runs", 16, stopped)
    stopped.send_signal(signal.SIGTERM)
    _, stderr = stopped.communicate(timeout=120)
    assert stopped.returncode == 1 and "Stopped by SIGTERM" in stderr and "resume=auto" in stderr
    assert "Traceback" not in stderr
    unfinished = [
        d for d in (tmp_path / "logs" / "train" / "runs").iterdir() if not (d / "results.json").exists()
    ]
    [stopped_dir] = unfinished
    step = torch.load(stopped_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert step >= 16 and step % 12, "the SIGTERM checkpoint is taken where training stopped, mid-epoch"

    resumed = start_training(tmp_path, *CLI_RUN, "resume=auto")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert f"resume=auto: continuing {stopped_dir}" in stdout
    [continued] = read_results(stopped_dir)
    assert_same_training(finished, continued)
    with open(stopped_dir / "csv" / "metrics.csv") as file:  # both parts of the run, in one file
        assert [row["epoch"] for row in csv.DictReader(file) if row["val/acc"]] == ["0", "1", "2"]
    # The same directory kept the whole run's best-checkpoint bookkeeping, so the test agrees too.
    assert continued["metrics"]["test/acc"] == finished["metrics"]["test/acc"]
    assert continued["metrics"]["test/loss"] == pytest.approx(finished["metrics"]["test/loss"], abs=1e-6)


def test_resume_auto_without_an_unfinished_run_starts_a_new_one(tmp_path):
    from conftest import run_script

    result = run_script("train.py", *FAST, "trainer.max_epochs=1", "resume=auto", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "resume=auto: no unfinished run with this config" in result.stdout
    assert len(read_results(tmp_path / "logs")) == 1


@pytest.mark.slow
def test_resume_auto_under_ddp_resumes_every_process_from_the_same_checkpoint(tmp_path):
    from conftest import run_script

    overrides = [*FAST, "trainer=ddp_sim", "logger=csv"]
    first = run_script("train.py", *overrides, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    [results] = read_results(tmp_path / "logs")
    run_dir = Path(results["output_dir"])
    (run_dir / "results.json").unlink()  # as if the run had been stopped after its last epoch

    resumed = run_script("train.py", *overrides, "resume=auto", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resume=auto: continuing {run_dir}" in resumed.stdout
    [again] = read_results(run_dir)
    # Both processes restored epoch 2 of 2, so neither trained again: the step count is unchanged.
    assert torch.load(again["last_checkpoint"], weights_only=True)["global_step"] == 6
    assert again["world_size"] == 2


def test_a_continued_run_appends_to_its_metrics_csv(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    from {{ cookiecutter.package }}.run.loggers import continue_csv_metrics

    first = CSVLogger(tmp_path, name="csv", version="")
    first.log_metrics({"train/loss": 1.0, "epoch": 0}, step=0)
    first.log_metrics({"val/acc": 0.5, "epoch": 0}, step=1)
    first.save()
    continued = CSVLogger(tmp_path, name="csv", version="")
    continue_csv_metrics(continued)
    continued.log_metrics({"test/acc": 0.9, "epoch": 1}, step=2)
    continued.save()
    with open(tmp_path / "csv" / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["step"] for row in rows] == ["0", "1", "2"]
    assert (rows[0]["train/loss"], rows[1]["val/acc"], rows[2]["test/acc"]) == ("1.0", "0.5", "0.9")
