"""The FLAN 2021 collection: 62 datasets in 12 clusters, one module per cluster.

Each cluster module defines `DATASETS: tuple[DatasetSpec, ...]` and nothing else public.
Importing a module here reads no files and registers nothing; `flan_jax.data.tasks.registry`
registers seqio tasks when asked.
"""
from __future__ import annotations

import importlib

from flan_jax.data.templates.spec import DatasetSpec

# Cluster id -> number of datasets (the FLAN 2021 paper's cluster sizes, 62 in all).
CLUSTER_SIZES: dict[str, int] = {
    "nli": 7,
    "commonsense": 4,
    "sentiment": 4,
    "paraphrase": 4,
    "closed_book_qa": 3,
    "struct_to_text": 4,
    "translation": 8,
    "reading_comprehension": 5,
    "reading_comprehension_commonsense": 2,
    "coreference": 3,
    "misc": 7,
    "summarization": 11,
}
CLUSTERS: tuple[str, ...] = tuple(CLUSTER_SIZES)


def cluster_datasets(cluster: str) -> tuple[DatasetSpec, ...]:
    if cluster not in CLUSTER_SIZES:
        raise KeyError(f"unknown FLAN 2021 cluster {cluster!r}; known: {', '.join(CLUSTERS)}")
    module = importlib.import_module(f"flan_jax.data.templates.flan2021.{cluster}")
    return module.DATASETS


def all_datasets() -> tuple[DatasetSpec, ...]:
    return tuple(spec for cluster in CLUSTERS for spec in cluster_datasets(cluster))
