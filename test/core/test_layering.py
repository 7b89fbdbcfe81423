"""Arrows point down only: the graph imports no backend, the planner no runtime, and the
runtime makes no plans (docs/runtime.md). Checked on the sources' import statements."""

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "hax_conn_core"


def imported_modules(package: str):
    found = {}
    for path in (CORE / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name, []).append(f"{path.relative_to(CORE)}:{node.lineno}")
    return found


@pytest.mark.parametrize("package, forbidden", [
    ("graph", ("hax_conn_core.runtime", "onnxruntime", "torch", "tensorrt",
               "hax_conn_core.planner")),
    ("planner", ("hax_conn_core.runtime", "onnxruntime", "torch", "tensorrt")),
    ("runtime", ("hax_conn_core.planner", "z3", "hax_conn_core.cli")),
    ("profiler", ("hax_conn_core.cli",)),
])
def test_a_package_never_imports_what_sits_above_it(package, forbidden):
    bad = {name: where for name, where in imported_modules(package).items()
           if any(name == f or name.startswith(f + ".") for f in forbidden)}
    assert not bad, f"{package} imports {bad}"


def test_the_check_sees_imports():
    assert "hax_conn_core.graph.onnx_export" in imported_modules("runtime")
