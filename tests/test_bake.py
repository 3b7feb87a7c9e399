"""Bake every supported option combination and check what it writes; invalid answers write nothing."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from conftest import TEMPLATE_DIR, bake

# Every choice of every option, one at a time against the defaults (cookiecutter-django style).
COMBINATIONS = [
    {},
    {"license": "MIT"},
    {"license": "Apache-2.0"},
    {"license": "BSD-3-Clause"},
    {"license": "none"},
    {"python_version": "3.10"},
    {"python_version": "3.11"},
    {"python_version": "3.12"},
    {"python_version": "3.13"},
    {"python_version": "3.14"},
    {"logger": "csv"},
    {"logger": "tensorboard"},
    {"logger": "wandb"},
    {"github_actions": True},
    {"github_actions": False},
    {"license": "none", "logger": "wandb", "github_actions": False, "python_version": "3.13"},
]
TEXT_SUFFIXES = {".py", ".yaml", ".yml", ".toml", ".md", ".txt", ""}


def combination_id(answers: dict) -> str:
    return "-".join(f"{key}={value}" for key, value in answers.items()) or "defaults"


def project_files(project: Path) -> set[str]:
    return {str(path.relative_to(project)) for path in project.rglob("*") if path.is_file()}


@pytest.fixture(scope="module", params=COMBINATIONS, ids=combination_id)
def baked(request, tmp_path_factory) -> tuple[dict, Path]:
    return request.param, bake(tmp_path_factory.mktemp("bake"), **request.param)


def test_files_match_the_chosen_options(baked):
    answers, project = baked
    files = project_files(project)
    assert ("LICENSE" in files) == (answers.get("license", "MIT") != "none")
    assert (".github/workflows/tests.yml" in files) == answers.get("github_actions", True)
    assert not any(name.startswith("licenses/") for name in files)
    expected = {
        ".pre-commit-config.yaml",
        "README.md",
        "pyproject.toml",
        "train.py",
        "eval.py",
        "tune.py",
        "configs/train.yaml",
        "configs/eval.yaml",
        "configs/tune.yaml",
        "src/image_classifier/__init__.py",
        "src/image_classifier/data/digits.npz",
        "configs/data/image_folder.yaml",
        "configs/data/csv.yaml",
        "configs/data/torchvision.yaml",
        "benchmarks/data_loading.py",
        "tests/conftest.py",
    }
    assert expected <= files


def test_license_text_matches_the_choice(baked):
    answers, project = baked
    license_name = answers.get("license", "MIT")
    if license_name == "none":
        return
    first_line = (project / "LICENSE").read_text().lstrip().splitlines()[0]
    assert {"MIT": "MIT License", "Apache-2.0": "Apache License", "BSD-3-Clause": "BSD 3-Clause License"}[
        license_name
    ] in first_line


def test_no_template_syntax_is_left(baked):
    _, project = baked
    for path in project.rglob("*"):
        if path.is_file() and path.suffix in TEXT_SUFFIXES:
            text = re.sub(r"\$\{\{[^}]*\}\}", "", path.read_text())  # a GitHub Actions expression
            assert "{{" not in text and "{%" not in text, path


def test_every_yaml_toml_and_python_file_parses(baked):
    _, project = baked
    for path in project.rglob("*"):
        if path.suffix in {".yaml", ".yml"}:
            yaml.safe_load(path.read_text())
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text())
        elif path.suffix == ".py":
            ast.parse(path.read_text(), filename=str(path))


def test_ruff_passes_on_the_generated_project(baked):
    _, project = baked
    for command in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command], cwd=project, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_dependencies_follow_the_chosen_logger_and_python(baked):
    answers, project = baked
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    dependencies = pyproject["dependencies"]
    logger = answers.get("logger", "csv")
    assert any(d.startswith("lightning>=2.6.6") for d in dependencies)  # load_from_checkpoint fix
    assert any(d.startswith("tensorboard") for d in dependencies) == (logger == "tensorboard")
    assert not any(d.startswith("wandb") for d in dependencies)  # always an extra: it slows every start
    assert pyproject["optional-dependencies"]["wandb"][0].startswith("wandb")
    assert pyproject["requires-python"] == f">={answers.get('python_version', '3.11')}"
    train_config = yaml.safe_load((project / "configs" / "train.yaml").read_text())
    assert {"logger": logger} in train_config["defaults"]


def test_ruff_targets_the_lowest_python_but_not_314s_except_syntax(baked):
    answers, project = baked
    lowest = int(answers.get("python_version", "3.11").split(".")[1])
    ruff = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["ruff"]
    assert ruff["target-version"] == f"py3{min(lowest, 13)}"


def test_readme_describes_the_chosen_default_logger(baked):
    answers, project = baked
    logger = answers.get("logger", "csv")
    readme = (project / "README.md").read_text()
    assert f"This project logs with `{logger}` unless told otherwise" in readme
    # The closing summary of its sample run shows that logger's directory.
    [logs] = [line.split()[-1] for line in readme.splitlines() if line.startswith("  logs ")]
    assert logs.endswith({"csv": "/csv", "tensorboard": "/tensorboard", "wandb": "031481"}[logger])
    # Only a logger left out of the core dependencies is said to need an extra.
    assert ("`tensorboard` needs `pip install -e '.[tensorboard]'`" in readme) == (logger != "tensorboard")


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"package": "torch"}, "would shadow"),
        ({"package": "class"}, "is a Python keyword"),
        ({"package": "1models"}, "not a valid Python import name"),
        ({"project_name": "123 Models"}, "not a valid Python import name"),
        ({"project": "Not A Slug"}, "not a valid distribution name"),
        ({"package": 'x"""); import os; os.system("touch pwned"); ("'}, "not a valid Python import name"),
        ({"project_name": ""}, "project_name is empty"),
        ({"project_name": "!!!"}, "gives an empty directory name"),
        ({"package": "logging"}, "standard library"),
        ({"project": "timm", "package": "timm_models"}, "distribution name of one of its dependencies"),
        ({"email": "you at example.com"}, "not an email address"),
    ],
)
def test_invalid_answers_fail_in_the_hook_and_leave_nothing(tmp_path, capfd, answers, message):
    with pytest.raises(FailedHookException):
        bake(tmp_path, **answers)
    assert message in capfd.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert not (Path.cwd() / "pwned").exists()


def test_names_with_quotes_and_unicode_are_data_not_code(tmp_path):
    name = 'Zoë\'s "Quoted" """Classifier""" \\'
    project = bake(tmp_path, project_name=name, author='Ana "AJ" Núñez', description='Says """hi""" \\n')
    assert project.name == "zoe-s-quoted-classifier"
    assert name in (project / "README.md").read_text()
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert pyproject["authors"][0]["name"] == 'Ana "AJ" Núñez'
    assert pyproject["description"] == 'Says """hi""" \\n'
    for path in project.rglob("*.py"):
        ast.parse(path.read_text())


@pytest.mark.parametrize("answers", [{}, {"license": "none", "github_actions": False}], ids=combination_id)
def test_baking_again_over_a_project_gives_the_same_files(tmp_path, answers):
    project = bake(tmp_path, **answers)
    first = project_files(project)
    again = cookiecutter(
        str(TEMPLATE_DIR),
        no_input=True,
        extra_context=answers,
        output_dir=str(tmp_path),
        overwrite_if_exists=True,
    )
    assert Path(again) == project and project_files(project) == first


def run_cookiecutter_cli(output_dir: Path, *answers: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            str(TEMPLATE_DIR),
            "--no-input",
            "-o",
            str(output_dir),
            *answers,
        ],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            "project_name=",
            "ERROR: project_name is empty. Name the project, e.g. project_name='Image Classifier'.",
        ),
        (
            "email=nope",
            "ERROR: email 'nope' is not an email address the package metadata accepts (ASCII, like "
            "'you@example.com'). Correct it, or leave it empty.",
        ),
    ],
    ids=["empty_project_name", "bad_email"],
)
def test_the_command_line_gets_the_hook_message_alone_on_stderr_and_status_1(tmp_path, answer, message):
    result = run_cookiecutter_cli(tmp_path, answer)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [message]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("answer", "last_line"),
    [
        ("python_version=3.9", "3.9 provided for choice variable python_version, but the choices are ["),
        ("license=GPL", "GPL provided for choice variable license, but the choices are ["),
        (
            "github_actions=maybe",
            "maybe provided for variable github_actions could not be converted to a boolean.",
        ),
    ],
)
def test_cookiecutter_itself_refuses_an_answer_outside_the_choices(tmp_path, answer, last_line):
    # cookiecutter checks choices before any template code runs: what README.md says the user sees.
    result = run_cookiecutter_cli(tmp_path, answer)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(f"ValueError: {last_line}")
    assert list(tmp_path.iterdir()) == []
