"""The package's import graph, read from every module's source (ast): imports run one way through
the layers (core -> store -> http -> capabilities -> handlers -> local -> cli), no module imports
itself back through others, core/ and store/ never import a capability, and a handler module
imports only what it wires (lower layers, each name used)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "functions" / "evreplay"
CAPABILITIES = ("ingest", "replay", "processor", "investigation", "reconcile")
LAYERS = {"core": 0, "store": 1, "http": 2, **dict.fromkeys(CAPABILITIES, 3), "handlers": 4, "local": 5, "cli": 6}


def module_name(path: Path) -> str:
    parts = ("evreplay", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(path): ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))}


def imported(tree: ast.Module, known: set[str]) -> Iterator[tuple[str, list[str]]]:
    """(evreplay module imported, names bound by that import), for every import anywhere in a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("evreplay"):
                    yield alias.name, [alias.asname or alias.name.split(".")[0]]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("evreplay"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                yield (submodule if submodule in known else node.module), [alias.asname or alias.name]


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1]] if len(parts) > 1 and parts[1] in LAYERS else 0


def graph(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    known = set(trees)
    return {name: {target for target, _ in imported(tree, known) if target != name} for name, tree in trees.items()}


def violations(trees: dict[str, ast.Module]) -> list[str]:
    found: list[str] = []
    edges = graph(trees)
    for source, targets in edges.items():
        for target in sorted(targets):
            if layer(target) > layer(source):
                found.append(f"upward import: {source} imports {target}")
    found += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(edges)]
    for name, tree in trees.items():
        if not name.startswith("evreplay.handlers."):
            continue
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        for target, names in imported(tree, set(trees)):
            if layer(target) >= LAYERS["handlers"]:
                found.append(f"handler {name} imports {target}, which it does not wire")
            found += [
                f"handler {name} imports {bound} from {target} and never uses it"
                for bound in names
                if bound not in used
            ]
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (depth-first search, colours)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_import_graph_runs_one_way_without_cycles():
    assert violations(modules()) == []


def test_import_graph_check_finds_planted_violations():
    # GIVEN the real package with a store module importing a capability, a core module and that
    # store module importing each other, and a handler importing another handler
    trees = modules()
    plant = "from evreplay.replay.queue import ReplayQueue\nfrom evreplay.core.settings import get_settings\n"
    trees["evreplay.store.raw"].body += ast.parse(plant).body
    trees["evreplay.core.settings"].body += ast.parse("from evreplay.store import raw\n").body
    trees["evreplay.handlers.ingest"].body += ast.parse("from evreplay.handlers import processor\n").body
    # WHEN the graph is checked THEN each is named
    found = violations(trees)
    assert "upward import: evreplay.store.raw imports evreplay.replay.queue" in found
    assert "upward import: evreplay.core.settings imports evreplay.store.raw" in found
    assert any(v.startswith("import cycle:") and "evreplay.core.settings" in v for v in found)
    assert "handler evreplay.handlers.ingest imports evreplay.handlers.processor, which it does not wire" in found
    assert (
        "handler evreplay.handlers.ingest imports processor from evreplay.handlers.processor and never uses it" in found
    )
