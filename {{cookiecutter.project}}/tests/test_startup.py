"""Start-up: `--help` answers without loading torch, Hydra's backport changes nothing it prints, and a
run loads only what it uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra._internal.config_repository import CachingConfigRepository, ConfigRepository
from hydra._internal.utils import create_config_search_path
from hydra.core.config_store import ConfigStore

from {{ cookiecutter.package }}.run.hydra_backports import apply_hydra_backports

from conftest import CONFIG_DIR, PROJECT_ROOT, run_script

SCRIPTS = ("train.py", "eval.py", "tune.py", "predict.py", "export.py", "report.py", "serve.py")
# Loaded only by the runs that use them: torch and the rest of the stack by any run, matplotlib by
# torchmetrics and the pictures, Optuna by a search, ONNX by an ONNX export, LitServe by serve.py.
HEAVY_MODULES = ("torch", "lightning", "timm", "torchvision", "torchmetrics", "matplotlib", "rich")
OPTIONAL_MODULES = ("optuna", "onnx", "onnxscript", "onnxruntime", "litserve", "fastapi")

# Runs a script as `python <script> args` would and prints, at exit, which of the modules above it
# loaded and how many objects the garbage collector had frozen.
REPORT_AT_EXIT = """
import atexit, gc, json, runpy, sys
watched = json.loads(sys.argv.pop(1))
atexit.register(lambda: print(json.dumps({
    "loaded": sorted(name for name in watched if name in sys.modules),
    "frozen": gc.get_freeze_count(),
}), file=sys.stderr))
sys.argv.pop(0)
runpy.run_path(sys.argv[0], run_name="__main__")
"""

# The same script with the Hydra backports switched off: what Hydra alone prints.
WITHOUT_BACKPORTS = """
import runpy, sys
from {{ cookiecutter.package }}.run import hydra_backports
hydra_backports.use_live_config_store = lambda: None
sys.argv.pop(0)
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_python(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_reporting_modules(script: str, *args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, dict]:
    watched = json.dumps([*HEAVY_MODULES, *OPTIONAL_MODULES])
    result = run_python(REPORT_AT_EXIT, watched, str(PROJECT_ROOT / script), *args, cwd=cwd)
    return result, json.loads(result.stderr.strip().splitlines()[-1])


def listed_groups(help_text: str) -> dict[str, list[str]]:
    """The `group: option, option` lines of a --help text."""
    lines = help_text.split("== Configuration groups ==")[1].split("== Config ==")[0].splitlines()
    return {
        group: options.split(", ")
        for group, _, options in (line.partition(": ") for line in lines if ": " in line)
    }


@pytest.mark.parametrize("flag", ["--help", "--hydra-help"])
def test_help_prints_exactly_what_hydra_prints_without_the_backports(tmp_path, flag):
    with_backports = run_script("train.py", flag, cwd=tmp_path)
    hydra_alone = run_python(WITHOUT_BACKPORTS, str(PROJECT_ROOT / "train.py"), flag, cwd=tmp_path)
    assert with_backports.returncode == 0 and hydra_alone.returncode == 0, hydra_alone.stderr
    assert "== Configuration groups ==" in with_backports.stdout
    assert with_backports.stdout == hydra_alone.stdout


def test_help_lists_every_config_group_with_every_option(tmp_path):
    result = run_script("train.py", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    on_disk = {
        str(folder.relative_to(CONFIG_DIR)): sorted(option.stem for option in folder.glob("*.yaml"))
        for folder in CONFIG_DIR.rglob("*")
        if folder.is_dir() and any(folder.glob("*.yaml"))
    }
    app_groups = {group: options for group, options in on_disk.items() if not group.startswith("hydra")}
    assert listed_groups(result.stdout) == app_groups


def test_listing_a_config_group_shares_the_config_store_instead_of_copying_it(monkeypatch):
    apply_hydra_backports()  # what every entry script does before Hydra composes

    def refuse_copy(store, memo):
        raise AssertionError("Hydra deep-copied the whole ConfigStore to list one config group")

    monkeypatch.setattr(ConfigStore, "__deepcopy__", refuse_copy, raising=False)
    # Hydra builds one of these, a deep copy of its repository, for every group --help lists.
    repository = CachingConfigRepository(ConfigRepository(create_config_search_path(str(CONFIG_DIR))))
    assert "basic" in repository.get_group_options("hydra/launcher")  # from the ConfigStore
    assert "slurm" in repository.get_group_options("hydra/launcher")  # from configs/hydra/launcher


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_loads_neither_torch_nor_any_other_heavy_module(tmp_path, script):
    result, report = run_reporting_modules(script, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert report["loaded"] == []


def test_a_wiring_check_loads_neither_optuna_nor_onnx_and_freezes_the_imports(tmp_path):
    result, report = run_reporting_modules(
        "train.py",
        "debug=fdr",
        "model.backbone=test_resnet",
        f"paths.log_dir={tmp_path / 'logs'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert not set(report["loaded"]) & set(OPTIONAL_MODULES)
    assert {"torch", "lightning", "timm"} <= set(report["loaded"])
    assert report["frozen"] > 100_000  # torch alone creates more objects than that


def test_only_the_first_run_of_a_process_freezes_what_is_alive(tmp_path):
    # In a subprocess: freezing the test process would keep its garbage for the rest of the session.
    result = run_python(
        "import gc\n"
        "from {{ cookiecutter.package }}.run.garbage_collector import freeze_imported_objects\n"
        "first = freeze_imported_objects()\n"
        "frozen = gc.get_freeze_count()\n"
        "garbage = [[]]; garbage[0].append(garbage)  # a cycle a later job of a sweep would leave\n"
        "print(first, frozen > 0, freeze_imported_objects(), gc.get_freeze_count() == frozen)\n",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "False", "True"]
