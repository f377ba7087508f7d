"""Import directions and circles, read from the source with `ast` (flan_jax/layering.py)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from flan_jax import layering

PACKAGE = Path(__file__).resolve().parents[1] / "flan_jax"


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:` (annotations only, never imported)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []  # ast.walk has not queued the children yet: cleared before it does
    yield from ast.walk(tree)


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every flan_jax module `path` imports at run time (at any depth: lazy imports count too)."""
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not node.module.startswith("flan_jax"):
                continue
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("flan_jax"))
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    modules = _modules(root)
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def violations(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} imports {b} ({layering.layer_of(a)} -> {layering.layer_of(b)})"
                  for a, deps in graph.items() for b in deps if not layering.allowed(a, b))


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    for name in import_graph():
        layering.layer_of(name)  # raises for a module outside every layer


def test_no_import_against_the_allowed_directions():
    assert violations(import_graph()) == []


def test_no_import_circle():
    assert circles(import_graph()) == []


@pytest.mark.parametrize("importer, imported", [
    ("flan_jax.data.features.vocab", "flan_jax.models.params_io"),   # data -> models
    ("flan_jax.models.lora", "flan_jax.data.features.vocab"),        # models -> data
    ("flan_jax.models.lora", "flan_jax.train.state"),                # models -> train
    ("flan_jax.eval.evaluate", "flan_jax.commands.eval"),            # core -> command
    ("flan_jax.train.train", "flan_jax.experiments.main_job"),       # core -> experiment
    ("flan_jax.data.tasks.registry", "flan_jax.cli"),                # core -> cli
])
def test_a_planted_import_is_caught(importer, imported):
    graph = import_graph()
    graph[importer] = graph[importer] | {imported}
    assert f"{importer} imports {imported}" in " ".join(violations(graph))


def test_a_planted_circle_is_caught():
    graph = import_graph()
    graph["flan_jax.data.templates.spec"] = graph["flan_jax.data.templates.spec"] | {
        "flan_jax.data.templates.render"}
    assert any("flan_jax.data.templates.spec" in c for c in circles(graph))
