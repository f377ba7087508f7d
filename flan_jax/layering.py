"""The allowed import directions between flan_jax's layers, written once as data.

    layer_of("flan_jax.data.features.packing") -> "data"
    layer_of("flan_jax.commands.train")        -> "commands"

A module may import modules of its own layer and of the layers listed for it in `ALLOWED`
(docs/architecture.md draws the same table). `tests/test_layering.py` reads every module's
imports with `ast` and fails on any other edge, and on any import circle between modules.
A package's `__main__.py` is a program (`python -m flan_jax.train`, t5x's convention), not
library code: it belongs to the `cli` layer.
"""
from __future__ import annotations

# Layers from the ground up. The core is data, models, train and eval.
GROUND = ("flan_jax", "flan_jax.errors", "flan_jax.noise", "flan_jax.host_malloc",
          "flan_jax.shipped", "flan_jax.progress", "flan_jax.layering", "flan_jax.user_cache")
ALLOWED: dict[str, frozenset[str]] = {
    "ground": frozenset(),
    "formats": frozenset({"ground"}),
    "data": frozenset({"ground", "formats"}),
    "models": frozenset({"ground", "formats"}),
    "train": frozenset({"ground", "formats", "data", "models"}),
    "eval": frozenset({"ground", "formats", "data", "models", "train"}),
    "experiments": frozenset({"ground", "formats", "data", "models", "train", "eval"}),
    "commands": frozenset({"ground", "formats", "data", "models", "train", "eval", "experiments"}),
    "cli": frozenset({"ground", "commands"}),
}


def layer_of(module: str) -> str:
    """The layer of a dotted module name under flan_jax; ValueError for any other name."""
    if module == "flan_jax.cli" or module.endswith(".__main__"):
        return "cli"
    if module in GROUND:
        return "ground"
    parts = module.split(".")
    if parts[0] != "flan_jax" or len(parts) < 2:
        raise ValueError(f"not a flan_jax module: {module}")
    if parts[1] in ALLOWED:
        return parts[1]
    raise ValueError(f"{module}: no layer (add it to flan_jax/layering.py)")


def allowed(importer: str, imported: str) -> bool:
    """True when module `importer` may import module `imported`."""
    a, b = layer_of(importer), layer_of(imported)
    return a == b or b in ALLOWED[a]
