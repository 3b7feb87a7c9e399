"""Python 3.14: its argparse refuses a help that is not a string, the kind Hydra 1.3 gives
`--shell-completion`, so without the backport no script of this project starts. Run here on any
Python: the scripts run in an interpreter whose argparse checks help strings as 3.14's does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import hydra
import pytest

from conftest import FAST, PROJECT_ROOT, read_results

SCRIPTS = ("train.py", "eval.py", "tune.py", "predict.py", "export.py", "report.py", "serve.py")

# Python 3.14's check, read in its argparse.py: add_argument calls _check_help(action), which
# expands the help like --help would (a help without "%" stays as it is) and turns a failure into
# ValueError("badly formed help string"). Only a parser (which has a formatter) checks. Here the
# check runs right after the argument is added instead of right before: the error is the same.
PYTHON_314_ARGPARSE = """
import argparse, sys

def _check_help(self, action):
    if action.help and hasattr(self, "_get_formatter"):
        formatter = self._get_formatter()
        try:
            if "%" in formatter._get_help_string(action):
                formatter._expand_help(action)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError("badly formed help string") from exc

_add_argument = argparse._ActionsContainer.add_argument

def add_argument(self, *args, **kwargs):
    action = _add_argument(self, *args, **kwargs)
    self._check_help(action)
    return action

argparse._ActionsContainer._check_help = _check_help
argparse._ActionsContainer.add_argument = add_argument
"""

# Then runs a script as `python <script> args` would, with the Python 3.14 backport or without it.
RUN_SCRIPT = """
import runpy
if sys.argv.pop(1) == "without":
    from {{ cookiecutter.package }}.run import hydra_backports
    hydra_backports.accept_lazy_completion_help = lambda: None
sys.argv.pop(0)
runpy.run_path(sys.argv[0], run_name="__main__")
"""

# Hydra 1.4 carries the fix itself, switched on by sys.version_info, which no emulation changes.
on_hydra_1_3 = pytest.mark.skipif(
    tuple(int(part) for part in hydra.__version__.split(".")[:2]) >= (1, 4),
    reason="hydra-core 1.4 fixes this itself, only on a real Python 3.14",
)


def run_python_314(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run `code` with `args` after making argparse check help strings as Python 3.14 does."""
    return subprocess.run(
        [sys.executable, "-c", PYTHON_314_ARGPARSE + code, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_script_314(script: str, *args: str, backport: bool, cwd: Path) -> subprocess.CompletedProcess:
    with_or_without = "with" if backport else "without"
    return run_python_314(RUN_SCRIPT, with_or_without, str(PROJECT_ROOT / script), *args, cwd=cwd)


def test_the_emulated_argparse_refuses_what_python_314_refuses(tmp_path):
    outcomes = run_python_314(
        """
parser = argparse.ArgumentParser()
for name, help in [("plain", "text"), ("expanded", "%(default)s in %(prog)s"), ("percent", "100%% sure"),
                   ("unknown", "%(nothing)s"), ("object", object())]:
    try:
        parser.add_argument("--" + name, default=1, help=help)
        print(name, "accepted")
    except ValueError as error:
        print(name, error)
""",
        cwd=tmp_path,
    )
    assert outcomes.returncode == 0, outcomes.stderr
    assert outcomes.stdout.splitlines() == [
        "plain accepted",
        "expanded accepted",
        "percent accepted",
        "unknown badly formed help string",
        "object badly formed help string",
    ]


@on_hydra_1_3
@pytest.mark.parametrize("script", SCRIPTS)
def test_without_the_backport_no_script_starts_on_python_314(tmp_path, script):
    result = run_script_314(script, "--help", backport=False, cwd=tmp_path)
    assert result.returncode != 0
    assert "ValueError: badly formed help string" in result.stderr


@on_hydra_1_3
@pytest.mark.parametrize("script", SCRIPTS)
def test_with_the_backport_every_script_answers_help_on_python_314(tmp_path, script):
    result = run_script_314(script, "--help", backport=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "== Configuration groups ==" in result.stdout


@on_hydra_1_3
def test_the_backport_still_checks_hydras_help_strings(tmp_path):
    # A help string Hydra's parser would refuse on 3.14 is still refused with the backport applied.
    result = run_python_314(
        """
from hydra._internal import utils
from {{ cookiecutter.package }}.run.hydra_backports import apply_hydra_backports

def build_with_a_bad_help(build=utils.get_args_parser):
    parser = build()
    parser.add_argument("--broken", help="%(nothing)s")
    return parser

utils.get_args_parser = build_with_a_bad_help
apply_hydra_backports()
try:
    utils.get_args_parser()
except ValueError as error:
    print(error)
utils.get_args_parser().add_argument("--also-broken", help="%(nothing)s")
""",
        cwd=tmp_path,
    )
    assert result.stdout.splitlines() == ["badly formed help string"]
    assert result.stderr.strip().endswith("ValueError: badly formed help string")  # checked after too


@on_hydra_1_3
@pytest.mark.parametrize("backport", [False, True], ids=["without", "with"])
def test_a_training_run_on_python_314_needs_the_backport(tmp_path, backport):
    result = run_script_314("train.py", *FAST, backport=backport, cwd=tmp_path)
    if backport:
        assert result.returncode == 0, result.stderr
        [results] = read_results(tmp_path / "logs" / "train")
        assert "test/acc" in results["metrics"]
    else:
        assert result.returncode != 0 and "badly formed help string" in result.stderr
        assert not (tmp_path / "logs").exists()


@on_hydra_1_3
@pytest.mark.slow
@pytest.mark.parametrize("backport", [False, True], ids=["without", "with"])
def test_a_multirun_on_python_314_needs_the_backport(tmp_path, backport):
    sweep = ["-m", "optimizer=adamw,sgd", *FAST, "trainer.max_epochs=1"]
    result = run_script_314("train.py", *sweep, backport=backport, cwd=tmp_path)
    if backport:
        assert result.returncode == 0, result.stderr
        assert len(read_results(tmp_path / "logs" / "train" / "multiruns")) == 2
    else:
        assert result.returncode != 0 and "badly formed help string" in result.stderr
        assert not (tmp_path / "logs").exists()


def test_on_hydra_1_4_the_backport_leaves_hydras_parser_alone(tmp_path):
    result = run_python_314(
        """
import hydra, importlib
hydra.__version__ = "1.4.0rc3"  # what hydra-core 1.4 reports, which has the fix
from {{ cookiecutter.package }}.run.hydra_backports import apply_hydra_backports
apply_hydra_backports()
for name in ("hydra._internal.utils", "hydra.main"):
    print(name, getattr(importlib.import_module(name).get_args_parser, "backported", False))
""",
        cwd=tmp_path,
    )
    assert result.stdout.splitlines() == ["hydra._internal.utils False", "hydra.main False"], result.stderr
