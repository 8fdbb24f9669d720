"""The package's import graph: no circle anywhere, and the model imports nothing above it.

Two graphs: one of modules, and one of dockward's first-level subpackages (a top-level module such
as `dockward.errors` is a node of its own), where a package imports another when any of its
modules does. Neither may hold a circle.

Every executed import counts, also those inside functions and `importlib.import_module("...")`
with a literal name: a lazy import hides a circle from the interpreter, not from the design.
Imports under `if TYPE_CHECKING:` (annotations only, never executed) do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import dockward

ROOT = Path(dockward.__file__).resolve().parent
# What model/ may import of dockward: itself, the leaf utilities and the error types.
MODEL_MAY_IMPORT = ("dockward.model", "dockward.util", "dockward.errors")
# Package-level circles accepted on purpose, as {frozenset of packages: reason}. None today:
# add one only with the reason it cannot be broken.
ALLOWED_PACKAGE_CYCLES: dict[frozenset[str], str] = {}
# Who may import the rule catalogue, which imports the capabilities (lint, scan, policy, update,
# fleet): the commands, and audit, whose --check/--skip selection speaks every rule id.
CATALOG_USERS = ("dockward.cli", "dockward.audit")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(name: str, modules: set[str]) -> str | None:
    """The longest known module that `name` (a module or `module.attribute`) names."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def _executed(tree: ast.AST) -> list[ast.AST]:
    """Every node but the bodies of `if TYPE_CHECKING:` blocks (their `else` still runs)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if _type_checking(node):
            assert isinstance(node, ast.If)
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in _executed(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from pkg import sub` imports the module pkg.sub, `from pkg import name` pkg.
                names = [f"{base}.{a.name}" for a in node.names]
            elif (
                isinstance(node, ast.Call)
                and (
                    (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                    or (isinstance(node.func, ast.Name) and node.func.id == "import_module")
                )
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names = [node.args[0].value]
            for name in names:
                target = _resolve(name, modules)
                if target is not None and target != mod:
                    graph[mod].add(target)
    return graph


def package_of(module: str) -> str:
    """The first-level subpackage (or top-level module) of dockward that `module` belongs to."""
    return ".".join(module.split(".")[:2])


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Packages, and the packages their modules import (the package root `dockward` left out)."""
    out: dict[str, set[str]] = {}
    for mod, targets in graph.items():
        if mod == "dockward":
            continue
        src = package_of(mod)
        out.setdefault(src, set()).update(
            package_of(t) for t in targets if t != "dockward" and package_of(t) != src
        )
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph, or None (iterative DFS with colours)."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    for start in sorted(graph):
        if colour[start] != white:
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        path = [start]
        colour[start] = grey
        while stack:
            node, todo = stack[-1]
            if not todo:
                colour[node] = black
                stack.pop()
                path.pop()
                continue
            nxt = todo.pop()
            if colour[nxt] == grey:
                return [*path[path.index(nxt) :], nxt]
            if colour[nxt] == white:
                colour[nxt] = grey
                path.append(nxt)
                stack.append((nxt, sorted(graph[nxt])))
    return None


def test_no_import_cycle_between_modules() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_no_import_cycle_between_packages() -> None:
    graph = package_graph(import_graph())
    for members in ALLOWED_PACKAGE_CYCLES:  # an accepted circle: cut its edges back into it
        for pkg in members:
            graph[pkg] -= members
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_catalogue_is_imported_only_from_above() -> None:
    # dockward.catalog imports the capabilities, so a capability importing it closes a circle.
    users = {mod for mod, targets in import_graph().items() if "dockward.catalog" in targets}
    assert users, "the test must see the commands importing the catalogue"
    assert all(u.startswith(CATALOG_USERS) for u in users), sorted(users)


def test_model_imports_nothing_above_it() -> None:
    bad = sorted(
        f"{mod} imports {t}"
        for mod, targets in import_graph().items()
        if mod.startswith("dockward.model")
        for t in targets
        if not t.startswith(MODEL_MAY_IMPORT)
    )
    assert not bad, bad


def _imports_of(prefix: str) -> set[str]:
    return {
        t
        for mod, targets in import_graph().items()
        if mod == prefix or mod.startswith(prefix + ".")
        for t in targets
    }


def test_the_input_layer_imports_only_the_model() -> None:
    bad = sorted(
        t
        for t in _imports_of("dockward.specs")
        if not t.startswith((*MODEL_MAY_IMPORT, "dockward.specs"))
    )
    assert not bad, bad


def test_the_collectors_do_not_import_the_scanner() -> None:
    # engine -> scan -> engine was a circle: the scan records come in through a parameter.
    assert not {t for t in _imports_of("dockward.engine") if t.startswith("dockward.scan")}


def test_the_graph_sees_function_level_imports() -> None:
    # The test can fail: lint's compose rules import the compose loader inside a function.
    graph = import_graph()
    assert "dockward.lint.compose" in graph["dockward.lint.dfrules.compose"]
    assert "dockward.specs.values" in graph["dockward.lint.dfrules.compose"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_package_graph_sees_what_the_module_graph_sees() -> None:
    # The test can fail: the proxy judges with the policy, and the policy's scan source is
    # imported through importlib; a circle between two packages shows in the package graph.
    graph = import_graph()
    assert "dockward.scan" in graph["dockward.policy.vulns"]
    packages = package_graph(graph)
    assert "dockward.policy" in packages["dockward.proxy"]
    assert "dockward.proxy" not in packages["dockward.policy"]
    assert package_graph({"dockward.a.x": {"dockward.b.y"}, "dockward.b.y": set()}) == {
        "dockward.a": {"dockward.b"},
        "dockward.b": set(),
    }
    assert find_cycle(
        package_graph({"dockward.a.x": {"dockward.b.y"}, "dockward.b.y": {"dockward.a"}})
    ) == ["dockward.a", "dockward.b", "dockward.a"]
