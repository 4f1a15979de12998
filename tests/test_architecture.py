"""The layout states the architecture: no import circles, data flowing one way, small files and
functions (issue 14). Read from the source with ``ast``; nothing is imported."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "jitrl"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60
LAYERS = ["cli", "service", "analysis", "running", "agents", "method", "retrieval", "memory"]
"""Packages from the top down: a package may import those below it, never those above
(``envs`` and ``llm`` sit beside ``memory`` at the bottom; ``settings``, ``fileio`` and
``cachedir`` are leaves everyone may use)."""
EXCEPTIONS = {
    ("method", "retrieval"),  # the learner owns its index; retrieval uses the method's types
    ("retrieval", "method"),
    ("memory", "method"),  # stores keep the method's Experience records
    ("analysis", "running"),  # reports read run folders written by running
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The jitrl modules ``path`` imports (at run time: not under ``TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    out = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
            if not all(name in known for name in names):  # not only submodules: the package too
                names.append(node.module)
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name.startswith("jitrl"):
                out.add(name)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_circles() -> None:
    found = cycles(graph())
    assert found == [], found


def test_packages_import_downwards_only() -> None:
    wrong = []
    for module, targets in graph().items():
        src = _package(module)
        for target in targets:
            dst = _package(target)
            upward = src in LAYERS and dst in LAYERS and LAYERS.index(dst) < LAYERS.index(src)
            if upward and (src, dst) not in EXCEPTIONS:
                wrong.append(f"{module} -> {target}")
    assert wrong == [], wrong


def _functions(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_no_file_over_400_lines_and_no_function_over_60() -> None:
    long_files, long_functions = [], []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_FILE_LINES:
            long_files.append(str(path.relative_to(SRC)))
        for fn in _functions(ast.parse(text)):
            length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            if length > MAX_FUNCTION_LINES:
                long_functions.append(f"{path.relative_to(SRC)}:{fn.name} ({length})")
    assert long_files == [] and long_functions == [], (long_files, long_functions)
