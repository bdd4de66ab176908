"""The package's shape, read from its import graph (AST, nothing imported): no cycles, imports
only in the allowed direction, and no function-local import that is not deferring a heavy SDK.

The rules are the ones `docs/architecture.md` states; a failure names the edge that breaks one.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("fatctl", "stacks", "cloud_init")

# Third-party modules worth deferring: each costs tens of milliseconds (or more) to import, and
# most commands never need them. A function-local import is allowed only when what it imports
# loads one of these at module level (directly, or through the fatctl modules it imports).
HEAVY_SDKS = frozenset({
    "alembic", "boto3", "cloudflare", "cryptography", "dbos", "fastapi", "hcloud", "httpx",
    "jinja2", "moto", "paramiko", "prometheus_client", "psycopg", "pulumi", "pulumi_hcloud",
    "requests", "rich", "sqlalchemy", "sqlmodel", "sqlite3", "starlette", "tenacity", "uvicorn",
    "yaml",
    "migrations",  # the Alembic environment: imports alembic
})  # fmt: skip

# Layers, outermost first: a module may import its own layer or any layer below it, never one
# above. `sandbox` is a stand-in for the outside world and sits beside the CLI.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("fatctl.cli", "fatctl.__main__", "fatctl.sandbox"),
    ("fatctl.service",),  # `fatctl serve`: the API and the workflows, over the services
    # monitoring watches the fleet beside the flows: it may use services.common (the HTTPS
    # failure reasons, secret names), and `fatctl serve` above mounts its /metrics.
    ("fatctl.services", "fatctl.monitoring"),
    ("fatctl.infra", "fatctl.dns", "stacks", "fatctl.remote", "fatctl.state", "cloud_init"),
    ("fatctl.pacing",),
    ("fatctl.config", "fatctl.domain", "fatctl.errors", "fatctl.names", "fatctl.validation",
     "fatctl.sensitive", "fatctl.secrets", "fatctl.clock", "fatctl"),
)  # fmt: skip
# Modules allowed function-local imports of anything: the CLI defers every service so that
# `fatctl --help` stays fast, and `__main__` is the entry point.
DEFER_ANYTHING = ("fatctl.cli", "fatctl.__main__")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    local: bool  # inside a function body


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _resolve(name: str) -> str:
    """The longest known module prefix of `name`, or the top-level name for third parties."""
    probe = name
    while probe:
        if probe in modules():
            return probe
        probe = probe.rpartition(".")[0]
    return name.split(".")[0]


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST, package: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import that runs (not under TYPE_CHECKING), and whether it is inside a function."""

    def walk(node: ast.AST, local: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, local
            elif isinstance(child, ast.If) and _is_type_checking(child):
                continue
            else:
                inner = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                yield from walk(child, inner)

    yield from walk(tree, False)


def _targets(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parent = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(parent) + (f".{base}" if base else "")
    # `from pkg import sub` depends on the submodule, `from mod import name` on the module.
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules() else base for a in node.names]


def parse(source: str) -> ast.Module:
    """`ast.parse`, tried again on CPython's spurious "AST constructor recursion depth mismatch"
    (python/cpython gh-106905, seen with 3.11.7 in threaded programs): a thread an earlier test
    left running tripped it once in a full CI run, on a file that parses fine."""
    for attempt in range(5):
        try:
            return ast.parse(source)
        except SystemError:
            if attempt == 4:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


@cache
def edges() -> tuple[Edge, ...]:
    found: list[Edge] = []
    for name, path in modules().items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node, local in _imports(parse(path.read_text()), package):
            for target in {_resolve(t) for t in _targets(node, package)}:
                # A submodule always imports its parents: that is Python, not a dependency.
                if target != name and not name.startswith(f"{target}."):
                    found.append(Edge(name, target, node.lineno, local))
    return tuple(found)


@cache
def heavy() -> frozenset[str]:
    """Modules whose import loads a heavy SDK: the SDKs and every module importing one at
    module level, transitively."""
    loaded = set(HEAVY_SDKS)
    top = [e for e in edges() if not e.local]
    while True:
        more = {e.source for e in top if e.target in loaded or e.target.split(".")[0] in loaded}
        if more <= loaded:
            return frozenset(loaded)
        loaded |= more


def _layer(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            inside = module == prefix or module.startswith(f"{prefix}.")
            if inside and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (every edge counts: a cycle
    hidden behind a function-local import is still a cycle)."""
    graph: dict[str, set[str]] = {m: set() for m in modules()}
    for e in edges():
        if e.target in graph:
            graph[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read() -> None:
    """Guards the guards: the walk must see the modules and edges it claims to check."""
    assert len(modules()) > 150
    assert Edge in {type(e) for e in edges()}
    assert any(e.source == "fatctl.services.provision.flow" for e in edges())
    assert {"fatctl.state.repo", "fatctl.infra.hcloud.client"} <= heavy()
    assert "fatctl.domain" not in heavy()


def test_no_import_cycles() -> None:
    assert cycles() == []


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for e in edges():
        source, target = _layer(e.source), _layer(e.target)
        if source is not None and target is not None and target < source:
            wrong.append(f"{e.source}:{e.line} imports {e.target}")
    assert wrong == []


def test_common_imports_no_feature() -> None:
    wrong = [
        f"{e.source}:{e.line} imports {e.target}"
        for e in edges()
        if e.source.startswith("fatctl.services.common")
        and e.target.startswith("fatctl.services.")
        and not e.target.startswith("fatctl.services.common")
    ]
    assert wrong == []


def test_function_local_imports_only_defer_heavy_sdks() -> None:
    wrong = [
        f"{e.source}:{e.line} imports {e.target} inside a function"
        for e in edges()
        if e.local
        and not e.source.startswith(DEFER_ANYTHING)
        and e.target not in heavy()
        and e.target.split(".")[0] not in HEAVY_SDKS
    ]
    assert wrong == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [("fatctl.cli.main", 0), ("fatctl.service.api.app", 1), ("fatctl.services.rollout.engine", 2),
     ("fatctl.infra", 3), ("fatctl.domain", 5), ("fatctl", 5), ("fatctl.monitoring.probe", 2)],
)  # fmt: skip
def test_layers_are_found_by_longest_prefix(source: str, expected: int) -> None:
    assert _layer(source) == expected
