"""Keep only the files of the chosen options, then print the next steps."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

LICENSES_DIR = "licenses"
WORKFLOWS_DIR = ".github"


def select_files(project_dir: Path, answers: dict) -> None:
    """Move the chosen license into place and delete the files of options that were not chosen.

    Safe to run again on its own result (cruft and `cookiecutter --overwrite-if-exists` rerun the hook).
    """
    licenses = project_dir / LICENSES_DIR
    if licenses.is_dir():
        if answers["license"] != "none":
            shutil.move(str(licenses / answers["license"]), project_dir / "LICENSE")
        shutil.rmtree(licenses)
    if not answers["github_actions"]:
        shutil.rmtree(project_dir / WORKFLOWS_DIR, ignore_errors=True)


def next_steps(project_dir: Path, answers: dict) -> str:
    """Return the commands that take a user from the fresh project to a trained model."""
    extra = "[dev,wandb]" if answers["logger"] == "wandb" else "[dev]"
    return "\n".join(
        [
            f"Created {project_dir}",
            "Next steps:",
            f"  cd {project_dir.name}",
            "  python -m venv .venv && . .venv/bin/activate",
            f"  pip install -e '.{extra}'",
            "  python train.py            # fine-tunes a timm model on the bundled digits, no download",
            "  pytest                     # the project's own tests",
        ]
    )


def main(answers_json: str) -> int:
    answers = json.loads(answers_json)
    project_dir = Path.cwd()
    select_files(project_dir, answers)
    print(next_steps(project_dir, answers))
    return 0


if __name__ == "__main__":
    sys.exit(
        main(
            r"""{{ {"license": cookiecutter.license, "logger": cookiecutter.logger,
                  "github_actions": cookiecutter.github_actions} | tojson }}"""
        )
    )
