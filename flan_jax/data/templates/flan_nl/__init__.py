"""flan-nl: a small natural-language instruction benchmark written for this repo (no downloads).

6 clusters x 3 datasets of everyday-language tasks a pretrained language model has the knowledge
for (sentiment, topic, entailment, commonsense, paraphrase, word relations), each with 10
templates and answer options, so held-out zero-shot transfer can be measured by rank
classification on a *pretrained* model: the knowledge is there, the instructions are what is new.
Every text is built by code from hand-written word lists and sentence frames with fixed seeds;
splits are disjoint by content (see `_source`).

    from flan_jax.data.templates import flan_nl
    flan_nl.CLUSTERS                            # ("nl_sentiment", ...)
    flan_nl.cluster_datasets("nl_nli")          # 3 DatasetSpecs
    spec = flan_nl.all_datasets()[0]
    src = spec.sources[spec.name]               # a ProceduralSource
    rows = src.generate(src.split_seeds["validation"], 5)

Held-out choice: HELD_OUT_CLUSTER = "nl_nli" (reasons and the base-model measurement in
docs/flan_nl.md). Importing this package builds nothing: cluster modules are imported on first
request, and pools are built on the first `generate` call.
"""
from __future__ import annotations

from flan_jax.data.templates.ablations import no_template_spec  # noqa: F401  (public here)
from flan_jax.data.templates.clusters import ClusterModules, UnknownClusterError  # noqa: F401  (public here)
from flan_jax.data.templates.spec import DatasetSpec

# Cluster name -> module in this package (one module per cluster).
CLUSTER_MODULES: dict[str, str] = {
    "nl_sentiment": "sentiment",
    "nl_topic": "topic",
    "nl_nli": "nli",
    "nl_commonsense": "commonsense",
    "nl_paraphrase": "paraphrase",
    "nl_word_relations": "word_relations",
}
CLUSTERS: tuple[str, ...] = tuple(CLUSTER_MODULES)

HELD_OUT_CLUSTER = "nl_nli"
HELD_IN_CLUSTERS: tuple[str, ...] = tuple(c for c in CLUSTERS if c != HELD_OUT_CLUSTER)

_CLUSTERS = ClusterModules("flan-nl", __name__, CLUSTER_MODULES)
cluster_datasets = _CLUSTERS.cluster_datasets  # cluster_datasets("nl_nli") -> its DatasetSpecs
all_datasets = _CLUSTERS.all_datasets  # every flan-nl DatasetSpec, clusters in CLUSTERS order


def no_template_datasets() -> tuple[DatasetSpec, ...]:
    """`no_template_spec` of every flan-nl dataset (the `flan_nl_no_template` collection)."""
    return tuple(no_template_spec(spec) for spec in all_datasets())


__all__ = [
    "CLUSTERS", "CLUSTER_MODULES", "HELD_OUT_CLUSTER", "HELD_IN_CLUSTERS",
    "UnknownClusterError", "all_datasets", "cluster_datasets", "no_template_datasets",
    "no_template_spec",
]
