"""The package's one-way data flow, read from the imports: config -> data -> model -> train /
sample / evaluate -> cli / tui. A module that imports a layer above its own (evaluation
importing the training package, as jaxrap.evaluate.perplexity did for the mesh helpers) fails
here, lazy imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jaxrap"

# For each part of the package (a subpackage or a top-level module), the parts above it that it
# must never import. Parts not named here (errors, config, shape_rules, hub, compile_cache) sit
# at the bottom and may be imported by all.
FORBIDDEN = {
    "data": {"model", "train", "sample", "evaluate", "cli", "tui", "sharding", "dispatch", "checkpoint", "load", "rundir"},
    "phonetics": {"model", "train", "sample", "evaluate", "cli", "tui", "data"},
    "model": {"train", "sample", "evaluate", "cli", "tui", "load", "rundir"},
    "sharding": {"model", "train", "sample", "evaluate", "cli", "tui"},
    "dispatch": {"model", "train", "sample", "evaluate", "cli", "tui"},
    "checkpoint": {"train", "sample", "evaluate", "cli", "tui"},
    "load": {"train", "sample", "evaluate", "cli", "tui"},
    "rundir": {"train", "sample", "evaluate", "cli", "tui"},
    "train": {"sample", "evaluate", "cli", "tui"},
    "sample": {"train", "evaluate", "cli", "tui"},
    "evaluate": {"train", "cli", "tui"},
    "tui": {"train", "cli"},
}


def _part(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imported_parts(path: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "jaxrap" else [f"jaxrap.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        parts.update(name.split(".")[1] for name in names if name.startswith("jaxrap.") and name.count(".") >= 1)
    return parts


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_module_imports_a_layer_above_its_own(path):
    part = _part(path)
    upward = _imported_parts(path) & FORBIDDEN.get(part, set())
    assert not upward, f"jaxrap/{path.relative_to(PACKAGE)} ({part}) imports {sorted(upward)}, a layer above it"


def test_the_check_sees_lazy_and_from_imports():
    """The parser finds an import inside a function and the `from jaxrap import x` form."""
    source = PACKAGE / "evaluate" / "perplexity.py"
    assert "sharding" in _imported_parts(source) and "data" in _imported_parts(source)
