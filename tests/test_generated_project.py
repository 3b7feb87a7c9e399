"""The generated project installs, passes its own test suite in every logger choice, and trains."""

from __future__ import annotations

import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from conftest import bake, outside_make


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=cwd, env={**outside_make(), **(env or {})}, capture_output=True, text=True, timeout=1800
    )


@pytest.mark.parametrize("logger", ["csv", "tensorboard", "wandb"])
def test_generated_project_passes_its_own_tests(tmp_path, logger):
    project = bake(tmp_path, logger=logger)
    # The default bake also runs the slow tests: a full default training that must reach 0.98.
    markers = "slow or not slow" if logger == "csv" else "not slow"
    result = run(
        ["make", "test", f"PYTHON={sys.executable}", f"ARGS=-q -p no:cacheprovider -m '{markers}'"],
        cwd=project,
        env={"PYTHONPATH": str(project / "src")},
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]


def test_make_train_trains_with_the_overrides_in_args(tmp_path):
    project = bake(tmp_path)
    result = run(
        ["make", "train", f"PYTHON={sys.executable}", "ARGS=debug=fdr model.backbone=test_resnet"],
        cwd=project,
        env={"PYTHONPATH": str(project / "src")},
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    (run_config,) = (project / "logs" / "train" / "runs").glob("*/config.yaml")
    assert (run_config.parent / "results.json").exists() and "backbone: test_resnet" in run_config.read_text()


def test_generated_project_installs_with_pip_and_trains_from_anywhere(tmp_path):
    project = bake(tmp_path / "bake")
    environment = tmp_path / "venv"
    # A fresh environment that sees this one's packages (torch & co., the build backend) through a
    # .pth file; the project itself is installed into it for real, editable.
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp_path)
    (Path(purelib.stdout.strip()) / "outer.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(project)],
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    trained = run(
        [str(python), str(project / "train.py"), "debug=fdr", "model.backbone=test_resnet"], cwd=elsewhere
    )
    assert trained.returncode == 0, trained.stderr[-5000:]
    assert list((elsewhere / "logs" / "train" / "runs").glob("*/results.json"))
    imported = run([str(python), "-c", "import image_classifier.data as d; print(d.__file__)"], cwd=elsewhere)
    assert imported.stdout.startswith(str(project / "src"))
