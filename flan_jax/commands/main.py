"""`flan-jax main` (`make run`): the main job, FLAN's held-out experiment from a pretrained base.

    flan-jax main [--experiment flan_nl|real] [--out DIR] [--gin_file F ...] [--gin.KEY=VALUE ...]

Experiments (functions a notebook can call too):
  flan_nl  flan_jax.experiments.main_job.run_main_job   (flan-nl, config experiments/main_job.gin)
  real     flan_jax.experiments.real_job.run_real_job   (the packaged real datasets, `make
           benchmarks`; config experiments/real_job.gin)
"""
from __future__ import annotations

import argparse
import logging

from flan_jax.train.gin_config import accept_gin_flags

EXPERIMENT = "experiments/main_job.gin"  # = main_job.EXPERIMENT (not imported: `--help` stays light)
EXPERIMENTS = ("flan_nl", "real")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", choices=EXPERIMENTS, default="flan_nl",
                        help="flan_nl: the flan-nl held-out job; real: the packaged real datasets")
    parser.add_argument("--out", default=None, help="run folder (default runs/main-<time>)")
    parser.add_argument("--gin_file", action="append", default=None,
                        help=f"gin files (default {EXPERIMENT})")
    accept_gin_flags(parser)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    if args.experiment == "real":
        from flan_jax.experiments.real_job import run_real_job

        run_real_job(args.out, args.gin_file, args.gin_bindings)
        return 0
    from flan_jax.experiments.main_job import run_main_job

    run_main_job(args.out, args.gin_file, args.gin_bindings)
    return 0
