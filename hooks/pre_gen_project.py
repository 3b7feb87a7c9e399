"""Validate the cookiecutter answers before any file of the project is written."""

from __future__ import annotations

import json
import keyword
import re
import sys
from email.headerregistry import Address

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
        "predict",
        "export",
    }
)
# PEP 508 distribution names; we also insist on lowercase so the directory, the distribution and the
# default package name agree.
PROJECT_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")
# What cookiecutter.json's `project` default becomes when `project_name` has no letter or digit to slugify:
# a name cookiecutter can create a directory for, so that this hook gets to explain the problem.
EMPTY_SLUG = "_"


def project_title_error(project_name: str, project: str) -> str | None:
    """Return why `project_name` cannot be the project's title, or None when it can."""
    if not project_name.strip():
        return "project_name is empty. Name the project, e.g. project_name='Image Classifier'."
    if "\n" in project_name or "\r" in project_name:
        return f"project_name {project_name!r} spans several lines. Give it a one-line name."
    if project == EMPTY_SLUG:
        return (
            f"project_name {project_name!r} gives an empty directory name (it has no letter or digit). "
            "Add one, or set project, e.g. project='my-classifier'."
        )
    return None


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
    if package in sys.stdlib_module_names:
        return (
            f"package {package!r} would shadow the standard library module of that name. "
            f"Choose another name, e.g. {package + '_classifier'!r}."
        )
    return None


def normalized_distribution(name: str) -> str:
    """The PEP 503 form of a distribution name, under which pip compares names."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_name_error(project: str, dependencies: tuple[str, ...] = ()) -> str | None:
    """Return why `project` cannot be the directory and distribution name, or None when it can.

    `dependencies` are the distribution names the project depends on: taking one would make pip
    treat the project as that dependency.
    """
    if not PROJECT_PATTERN.match(project):
        return (
            f"project {project!r} is not a valid distribution name: use lowercase ASCII letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit (e.g. 'my-classifier')."
        )
    if normalized_distribution(project) in {normalized_distribution(name) for name in dependencies}:
        return (
            f"project {project!r} is the distribution name of one of its dependencies, so pip would take one "
            f"for the other. Choose another name, e.g. {project + '-classifier'!r}."
        )
    return None


def email_error(author: str, email: str) -> str | None:
    """Return why `email` cannot be the author's address in pyproject.toml, or None (also when empty)."""
    if not email:
        return None
    try:
        # The check the build backend (hatchling) applies; it raises ValueError, HeaderParseError or even
        # IndexError, depending on how the address is malformed.
        Address(display_name=author, addr_spec=email)
    except Exception:
        return (
            f"email {email!r} is not an email address the package metadata accepts (ASCII, like "
            "'you@example.com'). Correct it, or leave it empty."
        )
    return None


def validate(answers: dict) -> list[str]:
    """Return every problem with the answers, one line each; an empty list means they are fine."""
    project = str(answers.get("project", ""))
    title_problem = project_title_error(str(answers.get("project_name", "")), project)
    if title_problem:
        # project and package default to the slug of the title: their problems would only repeat this one.
        return [title_problem]
    problems = [
        project_name_error(project, tuple(answers.get("dependencies", ()))),
        package_name_error(str(answers.get("package", ""))),
        email_error(str(answers.get("author", "")), str(answers.get("email", ""))),
    ]
    return [problem for problem in problems if problem]


def main(answers_json: str) -> int:
    problems = validate(json.loads(answers_json))
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    # The answers arrive as JSON inside a raw string: quotes, backslashes and unicode stay data.
    sys.exit(
        main(
            r"""{{ {"project_name": cookiecutter.project_name, "project": cookiecutter.project,
                  "package": cookiecutter.package, "author": cookiecutter.author, "email": cookiecutter.email,
                  "dependencies": cookiecutter._requirements | list} | tojson }}"""
        )
    )
