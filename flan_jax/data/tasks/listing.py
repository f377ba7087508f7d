"""The catalogue as rows: every dataset with its cluster, sources, splits and templates.

One row per DatasetSpec of each collection (FLAN 2021, CoT, flan-mini, bundled local samples);
`flan-jax catalog` prints them. A collection or FLAN 2021 cluster whose module does not import is
passed to `warn` and skipped, so the listing stays useful while the catalogue grows.

    catalogue_entries()[0]
    -> {"collection": "flan2021", "name": "anli", "cluster": "nli",
        "sources": {"anli_r1": "tfds:anli/r1:0.1.0", ...}, "splits": ["train", "validation", ...],
        "templates": 10, "cot_templates": 0, "options": true, "tfds_backed": true,
        "metric": "accuracy", "tasks": ["flan2021.anli_r1:zs_opt", ...],
        "how_to_obtain": {}}   (local sources: where to get the files)
"""
from __future__ import annotations

import sys
from typing import Any

from flan_jax.data.templates.spec import DatasetSpec, LocalSource, Source, TfdsSource


def describe_source(source: Source) -> str:
    if isinstance(source, TfdsSource):
        return f"tfds:{source.tfds_name}"
    if isinstance(source, LocalSource):
        return f"local:{source.file_pattern} ({source.format})"
    return "procedural"


def entry(collection: str, spec: DatasetSpec) -> dict[str, Any]:
    from flan_jax.data.tasks.registry import task_name, variants_for  # TensorFlow: not for `--help`

    splits: list[str] = []
    for source in spec.sources.values():
        splits += [s for s in source.splits if s not in splits]
    return {
        "collection": collection,
        "name": spec.name,
        "cluster": spec.cluster,
        "sources": {name: describe_source(s) for name, s in spec.sources.items()},
        "splits": splits,
        "templates": len(spec.templates),
        "cot_templates": len(spec.cot_templates),
        "options": spec.has_options,
        "tfds_backed": spec.tfds_backed,
        "metric": spec.metric,
        "tasks": [task_name(collection, s, v) for s in spec.sources for v in variants_for(spec)],
        "how_to_obtain": {
            name: s.how_to_obtain
            for name, s in spec.sources.items()
            if isinstance(s, LocalSource) and s.how_to_obtain
        },
    }


def catalogue_entries(warn=lambda msg: print(msg, file=sys.stderr)) -> list[dict[str, Any]]:
    """Entries of every importable collection; `warn` gets one line per module that failed."""
    from flan_jax.data.tasks.catalogue import COLLECTIONS, importable_datasets

    return [
        entry(collection, spec)
        for collection in COLLECTIONS
        for spec in importable_datasets(collection, warn)
    ]
