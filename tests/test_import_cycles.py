"""No import cycle among claus's modules, counting every import (a lazy import inside a function
that dodges a cycle is still one); `if TYPE_CHECKING:` blocks and a module's imports of its own
parent packages (Python imports those first anyway) do not count."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"claus": REPO / "python" / "claus", "claus_ext": REPO / "claus_ext"}


def _module_name(pkg: str, root: Path, path: Path) -> str:
    parts = [pkg, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module) -> list[ast.stmt]:
    """Every import statement of a module, in functions too, outside `if TYPE_CHECKING:`."""
    out, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo += node.orelse
        else:
            todo += list(ast.iter_child_nodes(node))
    return out


def _targets(node: ast.stmt, module: str, is_pkg: bool, known: set[str]) -> set[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".")
            base = base if is_pkg else base[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
    return {n for n in names if n in known}


def import_graph() -> dict[str, set[str]]:
    files = {}
    for pkg, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            files[_module_name(pkg, root, path)] = path
    known = set(files)
    graph = {}
    for mod, path in files.items():
        tree = ast.parse(path.read_text())
        deps = set()
        for node in _imports(tree):
            deps |= _targets(node, mod, path.name == "__init__.py", known)
        parents = {".".join(mod.split(".")[:k]) for k in range(1, mod.count(".") + 1)}
        graph[mod] = deps - {mod} - parents
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_cycle_finder_finds_a_planted_cycle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(g) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_graph_sees_relative_imports():
    g = import_graph()
    assert "claus.config" in g["claus.rounds"]
    assert "claus.data.dataset" in g["claus.data.synthetic"]


def test_no_import_cycle():
    g = import_graph()
    cycle = find_cycle(g)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
