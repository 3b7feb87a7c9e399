"""Shared helpers: compose the project's configs in-process and run its scripts as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from {{ cookiecutter.package }}.hydra_compat import VERSION_BASE

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "configs"
# A tiny timm model and a few batches keep each training test to seconds. Callbacks are switched off
# with null, not deleted with ~: hydra-core 1.4.0rc3's basic sweeper passes `~key` on to each job as
# `~key=null`, which 1.4 reads as "delete only if the value is null", so a sweep with `~key` fails.
FAST = [
    "model.backbone=test_resnet",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=3",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=1",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]


@pytest.fixture(autouse=True)
def wandb_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach wandb's servers from a test, even on a machine that is logged in."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def compose_into(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose configs/<config_name>.yaml like the command line does, writing into `output_dir`."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), **VERSION_BASE):
        config = compose(config_name=config_name, overrides=list(overrides))
    with open_dict(config):
        config.paths.output_dir = str(output_dir)
    return config


@pytest.fixture
def compose_config(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """Return a function that composes a config like the command line does, writing into tmp_path."""

    def _compose(overrides: list[str] = (), config_name: str = "train") -> DictConfig:
        return compose_into(config_name, overrides, tmp_path / "run")

    yield _compose


def fit(config: DictConfig, *callbacks):
    """Fit like train.py does, without loggers, with `callbacks` added; return the trainer and the model."""
    from {{ cookiecutter.package }}.run.process import configure_process
    from {{ cookiecutter.package }}.run.task import build_trainer, instantiate_callbacks
    from {{ cookiecutter.package }}.training import build_datamodule_and_model

    configure_process(config)
    datamodule, model = build_datamodule_and_model(config)
    trainer = build_trainer(
        config, [*instantiate_callbacks(config.callbacks).values(), *callbacks], loggers=[]
    )
    trainer.fit(model, datamodule=datamodule)
    return trainer, model


def use_backbone_preprocessing(datamodule, backbone: str, from_scratch: bool = False) -> dict:
    """Give `datamodule` the preprocessing a model `backbone` would decide for it, as training does."""
    from {{ cookiecutter.package }}.models import backbone_preprocessing

    preprocessing = backbone_preprocessing(
        backbone,
        datamodule.preprocessing_overrides,
        from_scratch=from_scratch,
        typical_image_side=datamodule.typical_image_side,
    )
    datamodule.use_preprocessing(preprocessing)
    return preprocessing


def run_script(
    script: str, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run `python <project>/<script> args...` in `cwd`, the way a user starts a run."""
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / script), *args],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def write_images(
    folder: Path, count: int, size: tuple[int, int] = (12, 10), suffix: str = ".png"
) -> list[Path]:
    """Write `count` small random RGB images (width, height = size) into `folder`; return their paths."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([len(list(folder.iterdir())), *folder.name.encode()])
    paths = []
    for index in range(count):
        path = folder / f"image_{index:03d}{suffix}"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def write_csv(path: Path, rows, header=("path", "label")) -> Path:
    """Write a CSV file of `rows` under `header`; return its path."""
    path.write_text("\n".join(",".join(map(str, row)) for row in [header, *rows]) + "\n")
    return path


def write_idx(path: Path, array) -> None:
    """Write `array` (uint8) in the IDX format of the MNIST files."""
    import struct

    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.asarray(array).astype(np.uint8).tobytes())


def write_image_folder(root: Path, counts: dict[str, int], **kwargs) -> Path:
    """Write root/<class>/<images> with counts[class] images each; return root."""
    for class_name, count in counts.items():
        write_images(root / class_name, count, **kwargs)
    return root


def read_results(directory: Path) -> list[dict]:
    """Return every results.json below `directory`, in path order."""
    return [json.loads(path.read_text()) for path in sorted(directory.rglob("results.json"))]


def read_only_folder() -> Path:
    """A folder this process cannot write into, even as root (a read-only /sys); skips the test where
    there is none."""
    import tempfile

    candidates = [Path("/sys")]
    if os.geteuid() != 0:
        folder = Path(tempfile.mkdtemp(prefix="read-only-"))
        folder.chmod(0o555)
        candidates.insert(0, folder)
    for folder in filter(Path.is_dir, candidates):
        try:
            (folder / ".probe").touch()
        except OSError:
            return folder
        (folder / ".probe").unlink()
    pytest.skip("no read-only folder on this machine")
