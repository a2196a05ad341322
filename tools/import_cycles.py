"""Import cycles among graphc's modules (docs/ARCHITECTURE.md quotes them).

    python tools/import_cycles.py

Reads every module's imports with ``ast`` (nothing is imported) and prints the strongly
connected components of the import graph twice: counting only module-level imports, and
counting imports inside functions too (the cycles those hide). tests/test_architecture.py
holds the first to none.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent


def modules(package: str = "graphc") -> dict:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name[:-len(".__init__")] if name.endswith(".__init__") else name] = path
    return found


def _targets(mods: dict, current: str, node) -> list:
    package = current if mods[current].name == "__init__.py" else current.rsplit(".", 1)[0]
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = package
    for _ in range(max(node.level - 1, 0)):
        base = base.rsplit(".", 1)[0]
    target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
    submodules = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
    return submodules if len(submodules) == len(node.names) else [target, *submodules]


def cycles(inside_functions: bool) -> list:
    """The import cycles (sets of modules), largest last."""
    mods = modules()
    graph = nx.DiGraph()
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        nodes = ast.walk(tree) if inside_functions else tree.body
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph.add_edges_from((name, t) for t in _targets(mods, name, node) if t in mods and t != name)
    return sorted((c for c in nx.strongly_connected_components(graph) if len(c) > 1), key=len)


def main() -> int:
    for label, inside in (("module-level imports", False), ("imports inside functions too", True)):
        found = cycles(inside)
        print(f"{label}: {len(found)} cycle(s){', sizes ' + str([len(c) for c in found]) if found else ''}")
        for c in found:
            print("  " + " ".join(sorted(c)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
