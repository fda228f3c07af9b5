"""The layering: `schemas/` is a leaf (it imports nothing of the project) and `connectors/`
never reaches into the pipeline, so each can be read, and reused, on its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = frozenset({"benchmarks", "connectors", "pipelines", "sandbox", "schemas", "tests"})
ALLOWED = {
    "schemas": frozenset({"schemas"}),
    "connectors": frozenset({"connectors", "schemas"}),
}


def project_imports(path: Path) -> set[str]:
    """The project's top-level packages a module imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & PROJECT


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_below_it(package: str) -> None:
    wrong = {
        path.relative_to(ROOT).as_posix(): sorted(project_imports(path) - ALLOWED[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {module: names for module, names in wrong.items() if names} == {}


def test_the_layer_check_sees_an_import_of_the_pipeline(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        "def f():\n    from pipelines.store import Store\n    import connectors.core\n"
    )

    assert project_imports(module) == {"pipelines", "connectors"}
