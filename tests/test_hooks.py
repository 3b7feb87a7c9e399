"""The hooks' logic, called directly: which names are refused, and with what message."""

from __future__ import annotations

import json

import pytest

from conftest import TEMPLATE_DIR, load_hook

pre_gen = load_hook("pre_gen_project")
post_gen = load_hook("post_gen_project")


@pytest.mark.parametrize("package", ["image_classifier", "digits2", "MyModels", "_private"])
def test_valid_package_names_pass(package):
    assert pre_gen.package_name_error(package) is None


@pytest.mark.parametrize(
    ("package", "reason"),
    [
        ("1st_model", "not a valid Python import name"),
        ("my-models", "not a valid Python import name"),
        ("my models", "not a valid Python import name"),
        ("modèle", "not a valid Python import name"),
        ("", "not a valid Python import name"),
        ("class", "is a Python keyword"),
        ("match", "is a Python keyword"),
        ("torch", "would shadow"),
        ("timm", "would shadow"),
        ("lightning", "would shadow"),
        ("hydra", "would shadow"),
        ("wandb", "would shadow"),
        ("src", "would shadow"),
        ("tests", "would shadow"),
    ],
)
def test_invalid_package_names_are_refused_with_the_reason(package, reason):
    error = pre_gen.package_name_error(package)
    assert error is not None and reason in error and repr(package) in error


def test_refusal_suggests_a_valid_name():
    assert "Try package='my_models'" in pre_gen.package_name_error("my-models")
    assert "Try package='project_1st_model'" in pre_gen.package_name_error("1st-model")


@pytest.mark.parametrize("project", ["image-classifier", "digits", "a1", "my.models"])
def test_valid_project_names_pass(project):
    assert pre_gen.project_name_error(project) is None


@pytest.mark.parametrize("project", ["", "-lead", "trail-", "Upper", "with space", "zoë", "a/b"])
def test_invalid_project_names_are_refused(project):
    assert "not a valid distribution name" in pre_gen.project_name_error(project)


@pytest.mark.parametrize(
    ("project_name", "project", "reason"),
    [
        ("", "_", "project_name is empty"),
        ("   ", "_", "project_name is empty"),
        ("Two\nLines", "two-lines", "spans several lines"),
        ("!!!", "_", "gives an empty directory name"),
    ],
)
def test_unusable_project_names_are_refused(project_name, project, reason):
    assert reason in pre_gen.project_title_error(project_name, project)


def test_a_title_without_letters_passes_when_the_project_is_named():
    assert pre_gen.project_title_error("!!!", "my-classifier") is None


def test_the_empty_slug_stand_in_is_the_default_of_project_in_cookiecutter_json():
    default = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())["project"]
    assert f"or '{pre_gen.EMPTY_SLUG}'" in default


def test_an_empty_title_is_the_only_problem_reported():
    answers = {"project_name": "", "project": "_", "package": "_", "email": "nope"}
    assert pre_gen.validate(answers) == [pre_gen.project_title_error("", "_")]


@pytest.mark.parametrize("project", ["timm", "torch", "hydra_core", "Hydra.Core"])
def test_a_dependency_name_is_refused_as_project(project):
    dependencies = ("torch", "timm", "hydra-core")
    error = pre_gen.project_name_error(project.lower(), dependencies)
    assert error is not None and "dependencies" in error


@pytest.mark.parametrize("package", ["logging", "json", "types", "code"])
def test_standard_library_names_are_refused_as_package(package):
    assert "standard library" in pre_gen.package_name_error(package)


@pytest.mark.parametrize("email", ["", "you@example.com", "first.last@localhost"])
def test_valid_emails_pass(email):
    assert pre_gen.email_error('Ana "AJ" Núñez', email) is None


@pytest.mark.parametrize("email", ["nope", "a@", "@b", "a b@c.d", "a@b@c", "zoë@example.com"])
def test_emails_the_package_metadata_rejects_are_refused(email):
    error = pre_gen.email_error("Ana", email)
    assert error is not None and repr(email) in error


def test_main_reads_answers_as_data_and_reports_every_problem(capsys):
    hostile = 'x"""); import os; os.system("touch pwned"); ("'
    status = pre_gen.main(json.dumps({"project_name": hostile, "project": hostile, "package": hostile}))
    errors = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(errors) == 2
    assert all(line.startswith("ERROR: ") for line in errors)


def test_post_hook_keeps_only_the_chosen_license(tmp_path):
    (tmp_path / "licenses").mkdir()
    for name in ("MIT", "Apache-2.0", "BSD-3-Clause"):
        (tmp_path / "licenses" / name).write_text(name)
    (tmp_path / ".github").mkdir()
    post_gen.select_files(tmp_path, {"license": "Apache-2.0", "github_actions": True, "logger": "csv"})
    assert (tmp_path / "LICENSE").read_text() == "Apache-2.0"
    assert not (tmp_path / "licenses").exists() and (tmp_path / ".github").exists()


def template_like_tree(root):
    (root / "licenses").mkdir()
    for name in ("MIT", "Apache-2.0", "BSD-3-Clause"):
        (root / "licenses" / name).write_text(name)
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "tests.yml").write_text("name: tests\n")


def tree(root):
    return {str(path.relative_to(root)): path.read_text() for path in root.rglob("*") if path.is_file()}


@pytest.mark.parametrize(
    "answers",
    [
        {"license": "MIT", "github_actions": True, "logger": "csv"},
        {"license": "none", "github_actions": False, "logger": "csv"},
    ],
)
def test_post_hook_is_safe_to_run_twice(tmp_path, answers):
    template_like_tree(tmp_path)
    post_gen.select_files(tmp_path, answers)
    once = tree(tmp_path)
    post_gen.select_files(tmp_path, answers)
    assert tree(tmp_path) == once


def test_next_steps_install_the_extra_of_the_chosen_logger(tmp_path):
    assert "pip install -e '.[dev,wandb]'" in post_gen.next_steps(tmp_path, {"logger": "wandb"})
    assert "pip install -e '.[dev]'" in post_gen.next_steps(tmp_path, {"logger": "csv"})
