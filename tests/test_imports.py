"""python/empg has no import cycle: every import between its modules (at module level or inside a
function) read from the source, and the graph checked for a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "python" / "empg"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The empg modules ``path`` imports (``from empg import x`` is module ``empg.x`` when there is
    one, else the package itself)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in modules:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in modules else node.module)
    return out - {module_name(path)}


def test_no_import_cycles():
    files = {module_name(p): p for p in PKG.rglob("*.py")}
    compiled = {"empg._core"}  # the Rust extension: imports nothing of the package
    graph = {m: imports_of(p, set(files) | compiled) for m, p in files.items()}
    graph.update({m: set() for m in compiled})
    assert "empg.build" in graph["empg.em"] and "empg.evaluation" in graph["empg.em"]  # the walk sees imports
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
