"""`flan-jax main` (`make run`): the main job, FLAN's held-out experiment from a pretrained base.

    flan-jax main [--out DIR] [--gin_file F ...] [--gin.KEY=VALUE ...]

The job itself is `flan_jax.experiments.main_job.run_main_job` (a notebook can call it too).
"""
from __future__ import annotations

import argparse
import logging

from flan_jax.train.gin_config import accept_gin_flags

EXPERIMENT = "experiments/main_job.gin"  # = main_job.EXPERIMENT (not imported: `--help` stays light)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="run folder (default runs/main-<time>)")
    parser.add_argument("--gin_file", action="append", default=None,
                        help=f"gin files (default {EXPERIMENT})")
    accept_gin_flags(parser)


def run(args: argparse.Namespace) -> int:
    from flan_jax.experiments.main_job import run_main_job

    logging.basicConfig(level=logging.WARNING)
    run_main_job(args.out, args.gin_file, args.gin_bindings)
    return 0
