"""The package's import graph, read from the source: no cycles, no edge up a layer.

Every ``import``/``from … import`` counts, deferred ones inside functions included — a deferred
import hides a dependency from a reader but not from the design. Imports under
``if TYPE_CHECKING:`` are left out: they never run.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "forecastprune"

#: lowest first; a module may import from its own unit and from units of lower layers only.
#: Units in one layer are siblings and may not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("_util", "_torchvision_ops"),  # _torchvision_ops: imports torchvision next to a CPU torch
    ("config", "runpoint", "isolation"),
    ("core",),  # layout, BN layers, LR clock, mask metrics
    ("store",),
    ("record", "zoo"),  # write stores; demo models and data
    ("forecasters",),
    ("predict", "engine", "testing"),  # the prediction path; the pruning engine
    ("compare", "pipeline"),
    ("integrations",),
    ("corpus",),  # the trajectory corpus: records zoo, torchvision and ultralytics runs
    ("cli",),
    ("__init__",),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.Module) -> list[ast.stmt]:
    """Import statements outside ``if TYPE_CHECKING:`` blocks, at any depth."""
    found: list[ast.stmt] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            for target in _targets(node, package, modules):
                # a module importing its own package's __init__ is how packages work
                if target != name and not name.startswith(target + "."):
                    edges[name].add(target)
    return edges


def _targets(node: ast.stmt, package: str, modules: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in modules]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    submodules = [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in modules]
    return submodules or ([source] if source in modules else [])


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _rank(unit: str) -> int:
    for rank, layer in enumerate(LAYERS):
        if unit in layer:
            return rank
    raise AssertionError(f"{unit} is in no layer of LAYERS: place it")


def test_every_unit_is_placed_in_a_layer():
    for module in _graph():
        _rank(_unit(module))


def test_no_import_goes_up_a_layer_or_sideways():
    bad = sorted(
        f"{a} -> {b}"
        for a, targets in _graph().items()
        for b in targets
        if _unit(a) != _unit(b) and _rank(_unit(b)) >= _rank(_unit(a))
    )
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_no_module_cycles():
    graph = _graph()
    cycles = [sorted(c) for c in _strongly_connected(graph) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_the_check_sees_deferred_imports_and_skips_type_only_ones():
    source = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\n"
        "def f():\n    import b\n"
    )
    names = [
        n.names[0].name for n in _runtime_imports(ast.parse(source)) if isinstance(n, ast.Import)
    ]
    assert names == ["b"]


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the package is small, but recursion limits are not)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in list(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(component)
    return found
