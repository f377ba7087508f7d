"""`flan-jax cache MIXTURE --out DIR [--workers N] [--runner pool|beam]`: render and tokenize a
mixture's tasks once into ArrayRecord files with a manifest per task (data/cache/writer.py).

Train from it with `--gin.data_options.cache_dir="'DIR'"`; `flan-jax mixture NAME --cache DIR`
shows which tasks are cached. Extra arguments after `--` go to Beam (e.g. `--runner=FlinkRunner`).
"""
from __future__ import annotations

import argparse
import functools
import time

from flan_jax.errors import FlanJaxError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mixture", help="mixture name (mixtures/*.toml) or one task name")
    parser.add_argument("--out", required=True, help="cache directory")
    parser.add_argument("--splits", default="train", help="comma-separated splits (default train)")
    parser.add_argument("--workers", type=int, default=1, help="processes for --runner pool")
    parser.add_argument("--runner", choices=("pool", "beam"), default="pool")
    parser.add_argument("--max_examples", type=int, default=None, help="per task and split (tests)")
    parser.add_argument("beam_args", nargs="*", help="after --: Beam pipeline options")


def register(name: str) -> list[str]:
    """Register the mixture (or task) in this process; returns its task names."""
    from flan_jax.data.mixing import mixtures  # noqa: PLC0415
    from flan_jax.data.tasks import catalogue

    if ":" in name:
        catalogue.ensure_task(name)
        return [name]
    return [leaf.task for leaf in mixtures.register_mixture(name)]


def run(args: argparse.Namespace) -> int:
    from flan_jax.data.cache import writer as cache  # noqa: PLC0415

    if args.workers < 1:
        raise FlanJaxError(f"--workers must be >= 1, got {args.workers}")
    splits = tuple(s for s in args.splits.split(",") if s)
    names = register(args.mixture)
    start = time.perf_counter()
    if args.runner == "beam":
        from flan_jax.data.cache.beam_cache import run_beam  # noqa: PLC0415

        manifests = run_beam(names, args.out, splits=splits, max_examples=args.max_examples,
                             register=functools.partial(register, args.mixture),
                             pipeline_args=args.beam_args)
    else:
        manifests = cache.cache_tasks(names, args.out, splits=splits, workers=args.workers,
                                      max_examples=args.max_examples,
                                      register=functools.partial(register, args.mixture))
    total = sum(s["num_examples"] for m in manifests for s in m["splits"].values())
    print(f"cached {len(manifests)} tasks, {total} examples in {time.perf_counter() - start:.1f} s -> {args.out}")
    return 0
