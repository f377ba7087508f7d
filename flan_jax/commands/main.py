"""`flan-jax main` (`make run`): the main job, FLAN's held-out experiment from a pretrained base.

    flan-jax main [--experiment real|flan_nl|sweep|clusters|templates] [--out DIR] [--gin_file F ...]
                  [--gin.KEY=VALUE ...]

Experiments (functions a notebook can call too):
  real     (the default) flan_jax.experiments.real_job.run_real_job: the packaged real
           datasets (`make benchmarks`); config experiments/real_job.gin
  flan_nl  flan_jax.experiments.main_job.run_main_job: flan-nl, config experiments/main_job.gin
  sweep    the real job's recipe chosen on the held-out development part
           (flan_jax.experiments.real_sweep; its rule is in its docstring)
  clusters, templates   FLAN 2021's ablations on the real job (flan_jax.experiments.ablations):
           held-out accuracy against the number of held-in clusters; instructions against no
           template and dataset name only. --out is the folder of their runs.
"""
from __future__ import annotations

import argparse
import logging

from flan_jax.train.gin_config import accept_gin_flags

EXPERIMENTS = ("real", "flan_nl", "sweep", "clusters", "templates")
GIN_FILES = {"real": "experiments/real_job.gin", "flan_nl": "experiments/main_job.gin"}  # not imported:
# `--help` stays light (= real_data.EXPERIMENT, main_job.EXPERIMENT)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", choices=EXPERIMENTS, default="real",
                        help="real (default): the packaged real datasets; flan_nl: the flan-nl job; sweep: the "
                             "real job's recipe sweep; clusters, templates: FLAN's ablations")
    parser.add_argument("--out", default=None, help="run folder (default runs/real-<time> or runs/main-<time>)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars or phase lines on stderr (flan_jax/progress.py)")
    parser.add_argument("--gin_file", action="append", default=None,
                        help=f"gin files (default {GIN_FILES['real']}; {GIN_FILES['flan_nl']} for flan_nl)")
    accept_gin_flags(parser)


def run(args: argparse.Namespace) -> int:
    if args.quiet:
        from flan_jax import progress

        progress.set_quiet()
    logging.basicConfig(level=logging.WARNING)
    if args.experiment in ("clusters", "templates"):
        from flan_jax.experiments import ablations

        run = ablations.clusters_ablation if args.experiment == "clusters" else ablations.templates_ablation
        run(args.out or f"runs/{args.experiment}-ablation", gin_files=args.gin_file,
            gin_bindings=list(args.gin_bindings))
        return 0
    if args.experiment == "sweep":
        from flan_jax.experiments.real_sweep import recipe_sweep

        recipe_sweep(args.out or "runs/real-sweep", gin_files=args.gin_file, gin_bindings=list(args.gin_bindings))
        return 0
    if args.experiment == "real":
        from flan_jax.experiments.real_job import run_real_job

        run_real_job(args.out, args.gin_file, args.gin_bindings)
        return 0
    from flan_jax.experiments.main_job import run_main_job

    run_main_job(args.out, args.gin_file, args.gin_bindings)
    return 0
