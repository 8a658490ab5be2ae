"""The shape of the package: layers, no circle, private modules kept private, a short top level.

The rules are written in CONTRIBUTING.md; these tests keep them true. The import graph is
read by grimp (the library behind import-linter), without annotations-only imports.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import grimp
import pytest

from .support.paths import REPO

PACKAGE = "grounded_answer"
SRC = REPO / "src" / PACKAGE

pytestmark = pytest.mark.quality


@cache
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, exclude_type_checking_imports=True, cache_dir=None)


def edges() -> Iterator[tuple[str, str]]:
    g = graph()
    for importer in sorted(g.modules):
        for imported in sorted(g.find_modules_directly_imported_by(importer)):
            yield importer, imported


def test_the_layers_contract_holds() -> None:
    # pyproject.toml [tool.importlinter] lists the layers, top to bottom.
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_the_import_graph_has_no_circle() -> None:
    children: dict[str, list[str]] = {}
    for importer, imported in edges():
        # A package's __init__ re-exports its modules: that edge is not a dependency
        # of the package on itself.
        if imported.startswith(importer + "."):
            continue
        children.setdefault(importer, []).append(imported)
    state: dict[str, int] = {}  # 1 visiting, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for child in children.get(node, []):
            if state.get(child) == 1:
                return [*path[path.index(child) :], child]
            if child not in state and (cycle := visit(child)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for module in sorted(graph().modules):
        if module not in state and (cycle := visit(module)) is not None:
            pytest.fail("import circle: " + " -> ".join(cycle))


def _private_owner(module: str) -> str | None:
    """The package a private module belongs to ('a.b._c' -> 'a.b'), or None if public."""
    parts = module.split(".")
    for n, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:n])
    return None


def test_a_private_module_is_imported_only_inside_its_package() -> None:
    wrong = []
    for importer, imported in edges():
        owner = _private_owner(imported)
        if owner is not None and not (importer == owner or importer.startswith(owner + ".")):
            wrong.append(f"{importer} imports {imported} (private to {owner})")
    assert not wrong, "\n".join(wrong)


def test_the_private_module_rule_can_fail() -> None:
    assert _private_owner("grounded_answer.stores._base") == "grounded_answer.stores"
    assert _private_owner("grounded_answer._files") == "grounded_answer"
    assert _private_owner("grounded_answer.pipeline") is None


def test_the_top_level_holds_at_most_eight_modules() -> None:
    modules = sorted(p.name for p in SRC.glob("*.py"))
    assert len(modules) <= 8, modules
