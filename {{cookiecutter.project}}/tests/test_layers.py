"""The package's shape: its parts import only the layers below them, and no module grows past a size a
reader can hold. Read from the source (every import counts, also one inside a function)."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT

PACKAGE = "{{ cookiecutter.package }}"
SOURCE = PROJECT_ROOT / "src" / PACKAGE
# Each part of the package (a subpackage or a top-level module) and its layer: a part imports only
# parts of lower layers, never one of its own layer, so data and models stay independent.
LAYERS = {
    "hydra_compat": 0,  # what differs between hydra-core 1.3 and 1.4
    "errors": 1,
    "atomic": 1,
    "pictures": 1,
    "finetune": 2,  # parameter groups and freezing: what the model builds its optimisation from
    "optim": 2,
    "data": 3,
    "models": 3,
    "callbacks": 4,
    "finders": 4,  # Lightning's finders with this project's parameter groups, and their picture
    "model_card": 4,  # written by the exporter from the loaded model and the run's files
    "run": 5,
    "search": 6,
    "training": 6,
    "evaluation": 6,
    "tuning": 6,
    "prediction": 6,
    "exporting": 6,
    "reporting": 6,
    "sweep": 6,
    "serving": 6,
}
MAX_CODE_LINES = 220


def part_of(module: str) -> str | None:
    """The part (`data`, `run`, `training`, ...) a dotted module name of this package belongs to."""
    names = module.split(".")
    return names[1] if names[0] == PACKAGE and len(names) > 1 else None


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, as absolute dotted names (relative imports resolved)."""
    relative = path.relative_to(SOURCE.parent).with_suffix("")
    package = list(relative.parts[:-1])  # what a relative import starts from, also for __init__.py
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def import_graph() -> dict[str, set[str]]:
    """Part -> the other parts it imports."""
    graph: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        source = part_of(".".join(path.relative_to(SOURCE.parent).with_suffix("").parts))
        if source is None:
            continue
        targets = {part_of(module) for module in imported_modules(path)} - {None, source}
        graph.setdefault(source, set()).update(targets)
    return graph


def code_lines(path: Path) -> int:
    """Lines holding code: neither blank nor only a comment (docstrings count)."""
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if token.type not in (
            tokenize.COMMENT,
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
        ):
            lines.update(range(token.start[0], token.end[0] + 1))
    lines.discard(0)
    return len(lines)


def test_every_part_of_the_package_has_a_layer():
    parts = {path.stem for path in SOURCE.glob("*.py")} | {
        path.parent.name for path in SOURCE.glob("*/__init__.py")
    }
    assert parts - {"__init__"} - set(LAYERS) == set(), "give each new part a layer in LAYERS"


@pytest.mark.parametrize("part", sorted(LAYERS))
def test_each_part_imports_only_the_layers_below_it(part):
    graph = import_graph()
    upward = sorted(
        target for target in graph.get(part, set()) if LAYERS.get(target, len(LAYERS)) >= LAYERS[part]
    )
    assert upward == [], (
        f"{part} (layer {LAYERS[part]}) imports {upward} (layers {[LAYERS.get(t) for t in upward]})"
    )


def test_no_two_parts_import_each_other_even_indirectly():
    graph = import_graph()

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for target in graph.get(todo.pop(), set()):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    loops = sorted(part for part in graph if part in reachable(part))
    assert loops == [], f"import loops through {loops}"


def test_the_layering_test_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from ..run.command import exit_with_message\n")
    moved = SOURCE / "data" / "_probe_for_test.py"
    assert not moved.exists()
    moved.write_text(module.read_text())
    try:
        assert "run" in import_graph()["data"]
    finally:
        moved.unlink()


@pytest.mark.parametrize("path", sorted(SOURCE.rglob("*.py")), ids=lambda p: str(p.relative_to(SOURCE)))
def test_no_module_is_longer_than_a_reader_can_hold(path):
    assert code_lines(path) <= MAX_CODE_LINES, f"split {path.relative_to(SOURCE)} along its seams"
