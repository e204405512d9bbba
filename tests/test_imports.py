"""The package's own imports form no cycle, counting the ones inside functions too (compare and workers once
imported each other that way)."""
from __future__ import annotations

import ast
import importlib.util
import pkgutil

import edgeopt


def _modules() -> list[str]:
    return ["edgeopt"] + sorted(m.name for m in pkgutil.walk_packages(edgeopt.__path__, "edgeopt."))


def _imports(name: str, known: set[str]) -> set[str]:
    """The edgeopt modules that module ``name`` imports anywhere in its source (``from a import b``: a.b if it
    is a module, else a)."""
    spec = importlib.util.find_spec(name)
    package = name if spec.submodule_search_locations else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(open(spec.origin, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in found if m in known and m != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(n: str, path: list[str]) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state and (found := visit(m, path)):
                return found
        path.pop()
        state[n] = 2
        return None

    return next((c for n in graph if n not in state and (c := visit(n, [])) is not None), None)


def test_the_package_has_no_import_cycle():
    names = _modules()
    assert {"edgeopt.run", "edgeopt.importers.dot", "edgeopt.systems.dagsched",
            "edgeopt.problems.dagsched.referee", "edgeopt.formulations.dagsched"} <= set(names)  # every place is seen
    graph = {n: _imports(n, set(names)) for n in names}
    assert "edgeopt.run" in graph["edgeopt.workers"] and "edgeopt.run" in graph["edgeopt.compare"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_check_finds_a_cycle():
    """The check itself can fail: a -> b -> c -> a is reported."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
