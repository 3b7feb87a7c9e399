"""Bake the template into temporary directories the way a user runs cookiecutter."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

from cookiecutter.main import cookiecutter

TEMPLATE_DIR = Path(__file__).resolve().parents[1]


def bake(output_dir: Path, **answers) -> Path:
    """Generate a project with `answers` (the rest default) and return its directory."""
    return Path(
        cookiecutter(str(TEMPLATE_DIR), no_input=True, extra_context=answers, output_dir=str(output_dir))
    )


def load_hook(name: str) -> ModuleType:
    """Import hooks/<name>.py as a module, so its functions can be called directly."""
    spec = importlib.util.spec_from_file_location(name, TEMPLATE_DIR / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def outside_make() -> dict[str, str]:
    """This process's environment without what an enclosing `make test` passes to the makes it starts."""
    return {
        key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}
    }
