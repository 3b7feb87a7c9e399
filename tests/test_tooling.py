"""The generated project's tooling on a fresh bake: pre-commit hooks, the GitHub workflow, the Makefile."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from conftest import TEMPLATE_DIR, bake, outside_make

BIN = Path(sys.executable).parent
# What each hook of the generated .pre-commit-config.yaml runs, copied from its repository's
# .pre-commit-hooks.yaml, so the same hooks can run offline from the tools installed here.
UPSTREAM_HOOKS = {
    "ruff-check": {
        "entry": f"{BIN / 'ruff'} check --force-exclude",
        "types_or": ["python", "pyi", "jupyter"],
    },
    "ruff-format": {
        "entry": f"{BIN / 'ruff'} format --force-exclude",
        "types_or": ["python", "pyi", "jupyter"],
    },
    "end-of-file-fixer": {"entry": str(BIN / "end-of-file-fixer"), "types": ["text"]},
    "check-added-large-files": {"entry": str(BIN / "check-added-large-files")},
    "check-yaml": {"entry": str(BIN / "check-yaml"), "types": ["yaml"]},
    "check-toml": {"entry": str(BIN / "check-toml"), "types": ["toml"]},
}


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env={**outside_make(), **env}, capture_output=True, text=True)


def git_repository(project: Path) -> None:
    """Make `project` a git repository with every file staged, as before its first commit."""
    run(["git", "init", "-q"], project)
    run(["git", "add", "-A"], project)


def local_pre_commit_config(config: dict) -> dict:
    """The same hooks with the same arguments, run by the installed tools instead of downloaded ones."""
    hooks = []
    for repo in config["repos"]:
        for hook in repo["hooks"]:
            hooks.append({**hook, **UPSTREAM_HOOKS[hook["id"]], "name": hook["id"], "language": "system"})
    return {"repos": [{"repo": "local", "hooks": hooks}]}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return bake(tmp_path_factory.mktemp("tooling"))


def test_the_pre_commit_config_is_valid(project):
    result = run([sys.executable, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"], project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pre_commit_hooks_pass_on_a_fresh_bake(project, tmp_path):
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    local_config = tmp_path / "pre-commit-local.yaml"
    local_config.write_text(yaml.safe_dump(local_pre_commit_config(config)))
    git_repository(project)
    result = run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files", "--config", str(local_config)],
        project,
        PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ran = {line.split(".")[0] for line in result.stdout.splitlines() if line.endswith(("Passed", "Skipped"))}
    assert ran == set(UPSTREAM_HOOKS)
    assert run(["git", "diff", "--name-only"], project).stdout == ""  # no hook changed a file


def run_pre_commit_with(
    project: Path, tmp_path: Path, name: str, content: str
) -> subprocess.CompletedProcess:
    """Run the hooks on the project with one more file staged, then take the file out again."""
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    local_config = tmp_path / "pre-commit-local.yaml"
    local_config.write_text(yaml.safe_dump(local_pre_commit_config(config)))
    git_repository(project)
    added = project / name
    added.write_text(content)
    run(["git", "add", str(added)], project)
    try:
        return run(
            [sys.executable, "-m", "pre_commit", "run", "--all-files", "--config", str(local_config)],
            project,
            PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
        )
    finally:
        run(["git", "rm", "-q", "-f", str(added)], project)


def failed_hooks(result: subprocess.CompletedProcess) -> set[str]:
    return {line.split(".")[0] for line in result.stdout.splitlines() if line.endswith("Failed")}


@pytest.mark.parametrize(
    ("name", "content", "hook"),
    [
        ("configs/broken.yaml", "key: [unclosed\n", "check-yaml"),
        ("broken.toml", "key = \n", "check-toml"),
        ("notes.txt", "no newline at the end", "end-of-file-fixer"),
        ("model.ckpt", "x" * 600_000 + "\n", "check-added-large-files"),
        ("unused.py", "import os\n", "ruff-check"),
        ("unformatted.py", "x = {'a':1}\n", "ruff-format"),
    ],
    ids=["yaml", "toml", "end-of-file", "large-file", "lint", "format"],
)
def test_pre_commit_hooks_catch_a_file_that_breaks_them(project, tmp_path, name, content, hook):
    result = run_pre_commit_with(project, tmp_path, name, content)
    assert result.returncode == 1 and failed_hooks(result) == {hook}, result.stdout


def test_a_large_uv_lock_may_be_committed(project, tmp_path):
    result = run_pre_commit_with(project, tmp_path, "uv.lock", "# lock\n" * 100_000)
    assert result.returncode == 0, result.stdout


def test_the_pinned_ruff_satisfies_the_projects_ruff_requirement(project):
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    ruff = next(repo for repo in config["repos"] if repo["repo"].endswith("/ruff-pre-commit"))
    requirement = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())["_requirements"]["ruff"]
    assert ruff["rev"].removeprefix("v") in SpecifierSet(requirement)


def make_targets_named_in(text: str) -> set[str]:
    return set(re.findall(r"\bmake (\w+)", text))


def assert_make_target_runs_commands(project: Path, target: str) -> None:
    dry_run = run(["make", "-n", target], project)
    assert dry_run.returncode == 0 and "python" in dry_run.stdout, (
        f"make {target}: {dry_run.stdout}{dry_run.stderr}"
    )


def test_the_newest_python_is_the_newest_offered():
    context = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
    offered = [Version(version) for version in context["python_version"]]
    assert Version(context["_newest_python"]) == max(offered)
    # The workflow's matrix counts from the chosen version up to the newest: no version may be skipped.
    minors = range(min(offered).minor, max(offered).minor + 1)
    assert sorted(offered) == [Version(f"3.{minor}") for minor in minors]


@pytest.mark.parametrize(
    ("python_version", "tested_on"),
    [("3.10", ["3.10", "3.11", "3.12", "3.13", "3.14"]), ("3.13", ["3.13", "3.14"]), ("3.14", ["3.14"])],
)
def test_the_workflow_is_valid_and_tests_every_python_from_the_chosen_one_with_cpu_torch(
    tmp_path, python_version, tested_on
):
    project = bake(tmp_path, python_version=python_version)
    workflow_file = project / ".github" / "workflows" / "tests.yml"
    schema_check = run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow_file)],
        project,
    )
    assert schema_check.returncode == 0, schema_check.stdout + schema_check.stderr
    job = yaml.safe_load(workflow_file.read_text())["jobs"]["test"]
    assert job["strategy"]["matrix"]["python-version"] == tested_on
    steps = job["steps"]
    setup_python = next(step for step in steps if step.get("uses", "").startswith("actions/setup-python@"))
    assert setup_python["with"] == {
        "python-version": "${{ matrix.python-version }}",
        "cache": "pip",
        "cache-dependency-path": "pyproject.toml",
    }
    commands = "\n".join(step.get("run", "") for step in steps)
    cpu_torch = "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu"
    assert cpu_torch in commands
    assert commands.index(cpu_torch) < commands.index("make install")  # the project's install keeps it
    for target in make_targets_named_in(commands):
        assert_make_target_runs_commands(project, target)
    next_hydra = yaml.safe_load(workflow_file.read_text())["jobs"]["test-hydra-1-4"]["steps"]
    next_hydra_commands = "\n".join(step.get("run", "") for step in next_hydra)
    assert 'pip install --pre "hydra-core>=1.4.0rc3,<1.5"' in next_hydra_commands
    assert next_hydra_commands.index("make install") < next_hydra_commands.index("hydra-core>=1.4")
    assert "make test ARGS=\"-m 'slow or not slow'\"" in next_hydra_commands  # sweeps run Hydra's plugins


@pytest.mark.parametrize(("logger", "extras"), [("csv", "dev"), ("wandb", "dev,wandb")])
def test_make_install_installs_the_project_editable_with_its_extras(tmp_path, logger, extras):
    project = bake(tmp_path, logger=logger)
    dry_run = run(["make", "-n", "install"], project)
    assert dry_run.stdout.strip() == f"python -m pip install -e '.[{extras}]'"


def test_make_lint_passes_on_a_fresh_bake(project):
    result = run(["make", "lint", f"PYTHON={sys.executable}"], project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_make_target_in_the_readme_exists(project):
    targets = make_targets_named_in((project / "README.md").read_text())
    assert {"install", "test", "train", "lint"} <= targets
    for target in targets:
        assert_make_target_runs_commands(project, target)


def test_uv_resolves_the_project_from_its_pyproject(tmp_path):
    project = bake(tmp_path, logger="wandb")
    result = run([str(BIN / "uv"), "lock"], project)
    assert result.returncode == 0, result.stdout + result.stderr
    locked = {
        package["name"]: package for package in tomllib.loads((project / "uv.lock").read_text())["package"]
    }
    assert Version(locked["lightning"]["version"]) >= Version("2.6.6")
    extras = locked["image-classifier"]["optional-dependencies"]
    assert {"pytest", "ruff", "pre-commit"} <= {dependency["name"] for dependency in extras["dev"]}
    assert {"torch", "torchvision", "timm", "hydra-core", "wandb"} <= set(locked)
    readme = (project / "README.md").read_text()
    assert "uv sync --extra dev --extra wandb" in readme


@pytest.mark.parametrize(
    ("script", "options"),
    [
        ("wall_time.py", ["--project", "--python", "--repeats", "--startup-repeats", "--plain-args"]),
        ("logging_overhead.py", ["--project", "--python", "--repeats"]),
    ],
)
def test_the_template_benchmarks_answer_help(script, options):
    result = run([sys.executable, str(TEMPLATE_DIR / "benchmarks" / script), "--help"], TEMPLATE_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    usage = [option for option in options if re.search(rf"{option} [A-Z_]+\b", result.stdout)]
    assert usage == options, result.stdout


def test_wall_time_prints_every_figure_for_a_fresh_bake_that_is_not_installed(project):
    # One tiny pair of each: whether the script runs and prints, not what the figures are.
    tiny = ["model.backbone=test_resnet", "trainer.max_epochs=1", "+trainer.limit_train_batches=2"]
    tiny += ["+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1"]
    command = [sys.executable, str(TEMPLATE_DIR / "benchmarks" / "wall_time.py"), "--project", str(project)]
    command += [
        "--repeats",
        "1",
        "--startup-repeats",
        "1",
        "--plain-args=--epochs 1 --threads 1",
        "--",
        *tiny,
    ]
    result = run(command, project)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout
    assert f"{project / 'src'} on PYTHONPATH" in output
    for figure in (
        r"pair 1: train\.py +[\d.]+ s \| plain +[\d.]+ s \| ratio [\d.]+",
        r"train\.py +median +[\d.]+ s +peak RSS median \d+ MiB",
        r"plain +median +[\d.]+ s +peak RSS median \d+ MiB",
        r"train\.py --help +median [\d.]+ s",
        r"pair 1: debug=fdr +[\d.]+ s \| import +[\d.]+ s \| ratio [\d.]+",
    ):
        assert re.search(figure, output), f"{figure!r} not in:\n{output}"
    spreads = re.findall(
        r"ratio of the medians [\d.]+; per pair: median [\d.]+, min [\d.]+, max [\d.]+ "
        r"\(target <= [\d.]+: (?:met|NOT met)\)",
        output,
    )
    assert len(spreads) == 2, output
