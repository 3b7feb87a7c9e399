"""cruft, the documented update path: a project made at template commit N takes N+1 over its own edits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TEMPLATE_DIR

CRUFT = str(Path(sys.executable).parent / "cruft")
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Template Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Template Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}
USER_EDIT = "\nOur own notes on this project, kept across template updates.\n"
TEMPLATE_CHANGE = "# Added by a later template commit.\ncheckpoints/\n"


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=cwd, env={**os.environ, **GIT_IDENTITY}, capture_output=True, text=True, timeout=300
    )


def ok(command: list[str], cwd: Path) -> str:
    result = run(command, cwd)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}{result.stderr}"
    return result.stdout + result.stderr


def commit_all(repository: Path, message: str) -> str:
    ok(["git", "add", "-A"], repository)
    ok(["git", "commit", "-q", "-m", message], repository)
    return ok(["git", "rev-parse", "HEAD"], repository).strip()


@pytest.fixture
def template_repository(tmp_path) -> Path:
    """A git repository of this template as it is in the working tree, uncommitted changes included."""
    repository = tmp_path / "template"
    listed = ok(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], TEMPLATE_DIR)
    for name in filter(None, listed.split("\0")):
        source = TEMPLATE_DIR / name
        if source.is_file():  # listed but deleted in the working tree: not part of it
            (repository / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repository / name)
    ok(["git", "init", "-q"], repository)
    return repository


def test_cruft_update_brings_a_template_change_in_over_a_local_edit(tmp_path, template_repository):
    commit_n = commit_all(template_repository, "Template commit N")
    ok([CRUFT, "create", str(template_repository), "--no-input", "--output-dir", str(tmp_path)], tmp_path)
    project = tmp_path / "image-classifier"
    assert json.loads((project / ".cruft.json").read_text())["commit"] == commit_n
    ok(["git", "init", "-q"], project)
    commit_all(project, "Created from the template with cruft")
    ok([CRUFT, "check"], project)

    with (project / "README.md").open("a") as readme:
        readme.write(USER_EDIT)
    commit_all(project, "Our own edit")
    # Commit N+1 changes a plain file, the MIT license text, which only reaches the project through the
    # post-generation hook (cruft reruns it for both commits), and a dependency range in cookiecutter.json.
    with (template_repository / "{{cookiecutter.project}}" / ".gitignore").open("a") as gitignore:
        gitignore.write(TEMPLATE_CHANGE)
    with (template_repository / "{{cookiecutter.project}}" / "licenses" / "MIT").open("a") as mit:
        mit.write("\nA sentence a later template commit added.\n")
    context_file = template_repository / "cookiecutter.json"
    context = json.loads(context_file.read_text())
    context["_requirements"]["timm"] = ">=1.0.99,<2"
    context_file.write_text(json.dumps(context, indent=2) + "\n")
    commit_n_plus_1 = commit_all(template_repository, "Template commit N+1")
    stale = run([CRUFT, "check"], project)
    assert stale.returncode == 1, stale.stdout + stale.stderr

    ok([CRUFT, "update", "--skip-apply-ask"], project)

    assert (project / "README.md").read_text().endswith(USER_EDIT)
    assert (project / ".gitignore").read_text().endswith(TEMPLATE_CHANGE)
    assert (project / "LICENSE").read_text().endswith("A sentence a later template commit added.\n")
    assert not (project / "licenses").exists()
    assert '"timm>=1.0.99,<2",' in (project / "pyproject.toml").read_text()
    assert json.loads((project / ".cruft.json").read_text())["commit"] == commit_n_plus_1
    assert not list(project.rglob("*.rej"))
    ok([CRUFT, "check"], project)
    # What still differs from the template at N+1 is our own edit, and nothing else.
    difference = ok([CRUFT, "diff"], project)
    assert "Our own notes on this project" in difference
    assert not any(change in difference for change in ("checkpoints/", "later template commit", "1.0.99"))
