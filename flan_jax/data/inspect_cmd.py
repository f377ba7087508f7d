"""`flan-jax catalog [--json]`: every dataset with its cluster, sources, splits and templates.

One row per DatasetSpec of each collection (FLAN 2021, CoT, flan-mini, bundled local samples).
A collection or FLAN 2021 cluster whose module does not import is reported on stderr and skipped,
so the command stays useful while the catalogue grows.

    $ flan-jax catalog --json | jq '.[0]'
    {"collection": "flan2021", "name": "anli", "cluster": "nli",
     "sources": {"anli_r1": "tfds:anli/r1:0.1.0", ...}, "splits": ["train", "validation", ...],
     "templates": 10, "cot_templates": 0, "options": true, "tfds_backed": true,
     "metric": "accuracy", "tasks": ["flan2021.anli_r1:zs_opt", ...],
     "how_to_obtain": {}}   (local sources: where to get the files)
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from flan_jax.data.spec import DatasetSpec, LocalSource, Source, TfdsSource


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def describe_source(source: Source) -> str:
    if isinstance(source, TfdsSource):
        return f"tfds:{source.tfds_name}"
    if isinstance(source, LocalSource):
        return f"local:{source.file_pattern} ({source.format})"
    return "procedural"


def entry(collection: str, spec: DatasetSpec) -> dict[str, Any]:
    from flan_jax.data.tasks import task_name, variants_for  # TensorFlow: not for `--help`

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
    from flan_jax.data.tasks import COLLECTIONS, importable_datasets

    return [
        entry(collection, spec)
        for collection in COLLECTIONS
        for spec in importable_datasets(collection, warn)
    ]


def run(args: argparse.Namespace) -> int:
    entries = catalogue_entries()
    if args.json:
        print(json.dumps(entries, indent=1))
        return 0
    header = ("collection", "dataset", "cluster", "templates", "tfds", "splits", "sources")
    rows = [
        (e["collection"], e["name"], e["cluster"], str(e["templates"]),
         "yes" if e["tfds_backed"] else "no", ",".join(e["splits"]),
         " ".join(e["sources"].values()))
        for e in entries
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    print(f"{len(entries)} datasets")
    return 0
