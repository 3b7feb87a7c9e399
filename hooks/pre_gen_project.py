"""Validate the cookiecutter answers before any file of the project is written."""

from __future__ import annotations

import json
import keyword
import re
import sys

# Import names a generated package must not take: its own dependencies and the folders of its layout.
RESERVED_PACKAGE_NAMES = frozenset(
    {
        "torch",
        "torchvision",
        "timm",
        "lightning",
        "pytorch_lightning",
        "lightning_fabric",
        "torchmetrics",
        "hydra",
        "omegaconf",
        "wandb",
        "tensorboard",
        "numpy",
        "PIL",
        "rich",
        "src",
        "tests",
        "configs",
        "train",
        "eval",
    }
)
# PEP 508 distribution names; we also insist on lowercase so the directory, the distribution and the
# default package name agree.
PROJECT_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")


def package_name_error(package: str) -> str | None:
    """Return why `package` cannot be the import name of the project, or None when it can."""
    if not package.isidentifier() or not package.isascii():
        suggestion = re.sub(r"\W+", "_", package.encode("ascii", "ignore").decode()).strip("_").lower()
        if suggestion[:1].isdigit():
            suggestion = f"project_{suggestion}"
        fix = f" Try package={suggestion!r}." if suggestion.isidentifier() else ""
        return (
            f"package {package!r} is not a valid Python import name "
            f"(ASCII letters, digits and underscores, not starting with a digit).{fix}"
        )
    if keyword.iskeyword(package) or keyword.issoftkeyword(package):
        return f"package {package!r} is a Python keyword. Choose another name, e.g. {package + '_models'!r}."
    if package in RESERVED_PACKAGE_NAMES or package.lower() in RESERVED_PACKAGE_NAMES:
        return (
            f"package {package!r} would shadow a module the project imports or one of its folders. "
            f"Choose another name, e.g. {package + '_classifier'!r}."
        )
    return None


def project_name_error(project: str) -> str | None:
    """Return why `project` cannot be the directory and distribution name, or None when it can."""
    if not PROJECT_PATTERN.match(project):
        return (
            f"project {project!r} is not a valid distribution name: use lowercase ASCII letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit (e.g. 'my-classifier')."
        )
    return None


def validate(answers: dict[str, str]) -> list[str]:
    """Return every problem with the answers, one line each; an empty list means they are fine."""
    problems = [
        project_name_error(str(answers.get("project", ""))),
        package_name_error(str(answers.get("package", ""))),
    ]
    return [problem for problem in problems if problem]


def main(answers_json: str) -> int:
    problems = validate(json.loads(answers_json))
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    # The answers arrive as JSON inside a raw string: quotes, backslashes and unicode stay data.
    sys.exit(main(r"""{{ {"project": cookiecutter.project, "package": cookiecutter.package} | tojson }}"""))
