"""The shape of the package, checked statically (docs/design.md, "Layout"):

- no import cycle among lxcsd's modules, counting imports inside functions (a lazy import
  is a dependency too); imports under ``if TYPE_CHECKING:`` are left out: they name a type
  and run nothing (a plan object passed to helper modules that annotate it is such a loop);
- no function over 60 lines;
- no module named after a standard-library module (``import sys`` must mean Python's);
- no module reaching into another's ``_private`` names.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_FUNCTION_LINES = 60
# Generated at install time (lxcsd/_installed.py); lxcsd.paths reads it.
PRIVATE_MODULES = {"lxcsd._installed"}


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for path in (root / "lxcsd").rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that runs: module level, in functions and classes; not the
    body of ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit(ast.Module(body=[other], type_ignores=[]))
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            else:
                visit(child)

    visit(tree)
    return found


def _absolute(name: str, is_package: bool, node: ast.ImportFrom) -> str:
    base = node.module or ""
    if node.level:
        package = name.split(".") if is_package else name.split(".")[:-1]
        package = package[:len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    return base


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The lxcsd modules ``name`` imports when it runs. ``from pkg import mod`` is an edge
    to pkg.mod (pkg's __init__ runs first, as for every module below pkg, which is no
    cycle of the design's); ``from mod import thing`` an edge to mod."""
    targets = set()
    for node in _import_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = _absolute(name, path.name == "__init__.py", node)
        for alias in node.names:
            full = f"{base}.{alias.name}"
            targets.add(full if full in known else base)
    return {target for target in targets if target in known and target != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports(name, path, known) for name, path in known.items()}


def test_no_import_cycles() -> None:
    assert cycles(import_graph(ROOT)) == []


def test_the_cycle_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    package = tmp_path / "lxcsd"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from lxcsd import b\n")
    (package / "b.py").write_text("def f():\n    from .a import x\n")
    (package / "c.py").write_text("TYPE_CHECKING = False\nif TYPE_CHECKING:\n"
                                  "    from lxcsd import a\n")
    assert cycles(import_graph(tmp_path)) == [["lxcsd.a", "lxcsd.b"]]


def test_no_function_over_60_lines() -> None:
    long = []
    for path in modules(ROOT).values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} {lines}")
    assert long == []


def test_no_module_named_after_the_standard_library() -> None:
    clashes = [name for name in modules(ROOT)
               if name.rpartition(".")[2] in sys.stdlib_module_names]
    assert clashes == []


def _reach_ins(name: str, path: Path, known: dict[str, Path]) -> list[str]:
    tree = ast.parse(path.read_text())
    aliases: dict[str, str] = {}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _absolute(name, path.name == "__init__.py", node)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in known:
                    aliases[alias.asname or alias.name] = full
                elif alias.name.startswith("_") and not alias.name.startswith("__") and \
                        base in known and full not in PRIVATE_MODULES:
                    found.append(f"from {base} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in known:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = aliases.get(node.value.id)
            if owner is not None and owner != name:
                found.append(f"{node.value.id}.{node.attr} ({owner})")
    return [f"{path.relative_to(ROOT)}: {item}" for item in found]


def test_no_module_uses_another_modules_private_names() -> None:
    known = modules(ROOT)
    found = [item for name, path in known.items() for item in _reach_ins(name, path, known)]
    assert found == []
