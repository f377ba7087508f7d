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

The rows come from `flan_jax.data.tasks.listing.catalogue_entries()`.
"""
from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def run(args: argparse.Namespace) -> int:
    from flan_jax.data.tasks.listing import catalogue_entries

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
