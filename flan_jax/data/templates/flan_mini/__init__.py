"""flan-mini: a procedural instruction benchmark made by code in this repo (no downloads).

8 clusters x 3 datasets of small programmatic tasks with exact answers, each with 10 templates,
sized so a few-million-parameter model trained from scratch on CPU can learn the held-in
clusters in a few hundred steps (rendered inputs stay under ~200 characters, answers are short).

    from flan_jax.data.templates import flan_mini
    flan_mini.CLUSTERS                          # ("mini_arithmetic", ...)
    flan_mini.cluster_datasets("mini_cipher")   # 3 DatasetSpecs
    spec = flan_mini.all_datasets()[0]
    src = spec.sources[spec.name]               # a ProceduralSource
    rows = src.generate(src.split_seeds["train"], 5)

Held-out choice: HELD_OUT_CLUSTER = "mini_comparison" (pick the larger/smaller number, the
longer word). Its answer format -- choose one option listed in the input -- is practised by the
held-in classification and counting tasks, and the knowledge it needs (order of numbers, word
length) by sorting digits, counting letters and words, so zero-shot transfer is plausible and,
with two options, measurable against a 50% chance floor. See docs/flan_mini.md.

Importing this package builds nothing: cluster modules are imported on first request.
"""
from __future__ import annotations

from flan_jax.data.templates.clusters import ClusterModules, UnknownClusterError  # noqa: F401  (public here)

# Cluster name -> module in this package (one module per cluster).
CLUSTER_MODULES: dict[str, str] = {
    "mini_arithmetic": "arithmetic",
    "mini_string_edit": "string_edit",
    "mini_sort_count": "sort_count",
    "mini_classification": "classification",
    "mini_extraction": "extraction",
    "mini_cipher": "cipher",
    "mini_comparison": "comparison",
    "mini_formatting": "formatting",
}
CLUSTERS: tuple[str, ...] = tuple(CLUSTER_MODULES)

# The cluster the main job holds out for zero-shot evaluation (reasons in the docstring above).
HELD_OUT_CLUSTER = "mini_comparison"
# Other clusters whose hold-out still leaves their skills partly covered elsewhere; for
# ablations (e.g. holding out classification, whose option format comparison shares).
HELD_OUT_ALTERNATIVES: tuple[str, ...] = ("mini_classification", "mini_cipher")
HELD_IN_CLUSTERS: tuple[str, ...] = tuple(c for c in CLUSTERS if c != HELD_OUT_CLUSTER)

_CLUSTERS = ClusterModules("flan-mini", __name__, CLUSTER_MODULES)
cluster_datasets = _CLUSTERS.cluster_datasets  # cluster_datasets("mini_arithmetic") -> its DatasetSpecs
all_datasets = _CLUSTERS.all_datasets  # every flan-mini DatasetSpec, clusters in CLUSTERS order


__all__ = [
    "CLUSTERS", "CLUSTER_MODULES", "HELD_OUT_CLUSTER", "HELD_OUT_ALTERNATIVES",
    "HELD_IN_CLUSTERS", "UnknownClusterError", "all_datasets", "cluster_datasets",
]
