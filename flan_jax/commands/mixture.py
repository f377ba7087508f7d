"""`flan-jax mixture NAME [--json] [--plot out.png]`: a mixture's composition.

Prints every leaf task with its share, its training-example count and where that count came
from (prepared TFDS, a local file, the published Flan table, ...), then the shares per cluster and
per collection. Resolution reads no data (see flan_jax.data.mixing.mixture_rates), so it works offline.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Sequence


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="mixture name (omit with --list)")
    parser.add_argument("--list", action="store_true", help="list the declared mixtures")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--plot", metavar="PNG", help="write a bar chart of cluster shares")
    parser.add_argument("--mixtures_file", action="append",
                        help="mixture TOML file(s) (default: every file in mixtures/)")
    parser.add_argument("--data_dir", help="local data directory (default $FLAN_JAX_DATA_DIR)")
    parser.add_argument("--cache", metavar="DIR", help="a `flan-jax cache` directory: mark the cached tasks")


def _cached_tasks(cache_dir: str, leaves: Sequence) -> dict[str, bool]:
    """{task: whether `cache_dir` holds its manifest} (reads manifests only, no data)."""
    from flan_jax.data.cache import writer as cache

    return {leaf.task: cache.load_manifest(cache_dir, leaf.task) is not None for leaf in leaves}


def run(args: argparse.Namespace) -> int:
    from flan_jax.data.mixing import mixtures  # here, so `--help` does not start TensorFlow

    decls, _ = mixtures.load_files(args.mixtures_file)
    if args.list or not args.name:
        for name, decl in sorted(decls.items()):
            print(f"{name:48s} {decl.description}")
        return 0
    leaves = mixtures.resolve(args.name, decls, args.data_dir)
    cached = _cached_tasks(args.cache, leaves) if args.cache else {}
    clusters = mixtures.group_shares(leaves, "cluster")
    collections = mixtures.group_shares(leaves, "collection")
    if args.json:
        print(json.dumps({
            "mixture": args.name,
            "tasks": [{**leaf.__dict__, **({"cached": cached[leaf.task]} if args.cache else {})}
                      for leaf in leaves],
            "clusters": clusters,
            "collections": collections,
        }, indent=1))
    else:
        print(f"mixture {args.name}: {len(leaves)} tasks  ({decls[args.name].description})")
        print(f"{'task':52s} {'cluster':34s} {'train n':>9s} {'share':>8s}  size from")
        for leaf in leaves:
            n = f"{leaf.num_examples}" if leaf.size_known else "-" if leaf.size_source == "share" else "cap*"
            source = leaf.size_source.partition(":")[0]
            mark = ("  cached" if cached[leaf.task] else "  NOT cached") if args.cache else ""
            print(f"{leaf.task:52s} {leaf.cluster:34s} {n:>9s} {100 * leaf.share:7.3f}%  {source}{mark}")
        origins = sorted({leaf.size_source for leaf in leaves if ":" in leaf.size_source})
        for origin in origins:
            print(f"{origin.partition(':')[0]}: {origin.partition(':')[2].strip()}")
        if not all(leaf.size_known or leaf.size_source == "share" for leaf in leaves):
            print("* size unknown offline (no prepared data, no published count): counted at the cap")
        print("\nper cluster:")
        for c, s in clusters.items():
            print(f"  {c:40s} {100 * s:7.3f}%")
        print("per collection:")
        for c, s in collections.items():
            print(f"  {c:40s} {100 * s:7.3f}%")
    if args.plot:
        from flan_jax.data.mixing.share_plot import plot_shares

        plot_shares(args.name, leaves, args.plot)
        print(f"wrote {args.plot}")
    return 0
