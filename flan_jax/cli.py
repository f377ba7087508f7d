"""`flan-jax` entry point: one subcommand per stage, each implemented in its own module.

A subcommand module exposes `add_arguments(parser)` and `run(args) -> int`. Only the chosen
subcommand's module is imported, so `flan-jax --help` does not start TensorFlow or JAX.
"""
from __future__ import annotations

import argparse
import glob
import importlib
import os
import sys

from flan_jax import host_malloc
from flan_jax.errors import FlanJaxError

# name -> (module implementing it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "catalog": ("flan_jax.data.inspect_cmd", "list every dataset with cluster, source and templates"),
    "show": ("flan_jax.data.show_cmd", "print rendered examples of a task"),
    "mixture": ("flan_jax.data.mixture_cmd", "print (and plot) a mixture's composition"),
    "convert": ("flan_jax.models.convert_cmd", "convert HF checkpoints to/from flan_jax"),
    "score": ("flan_jax.eval.score_cmd", "print the log-likelihood of targets given inputs"),
    "train": ("flan_jax.train.train_cmd", "train with gin configs (t5x-style flags)"),
    "compile": ("flan_jax.train.compile_cmd", "AOT-compile the train step for a TPU topology"),
    "eval": ("flan_jax.eval.eval_cmd", "evaluate a checkpoint on an evaluation mixture"),
    "cache": ("flan_jax.data.cache_cmd", "render and tokenize a mixture once into ArrayRecord files"),
    "audit": ("flan_jax.data.audit_cmd", "audit a mixture: duplicates, lengths, train/eval overlap"),
    "main": ("flan_jax.main_job", "the main job: tune a small model on flan-mini and evaluate"),
}


def _quiet_native_logs() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    # Without TPU chips (/dev/accel*, /dev/vfio/N), keep JAX off libtpu (the `tpu` extra): it
    # would load anyway (~230 MB, start-up errors, /tmp/libtpu_lockfile). `compile` loads it itself.
    if not (glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*")):
        os.environ.setdefault("JAX_PLATFORMS", "cpu")


def main(argv: list[str] | None = None) -> int:
    """Runs one subcommand. Called without `argv` (as the `flan-jax` program) it may first
    re-execute the process with tuned malloc settings (`flan_jax/host_malloc.py`)."""
    is_program = argv is None
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="flan-jax", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.parse_args(argv or ["--help"])
        return 2
    name = argv[0]
    _quiet_native_logs()
    if is_program:
        try:
            host_malloc.reexec_with_tuned_malloc()
        except FlanJaxError as e:
            print(f"flan-jax: error: {e}", file=sys.stderr)
            return 2
    module = importlib.import_module(COMMANDS[name][0])
    cmd_parser = argparse.ArgumentParser(prog=f"flan-jax {name}", description=COMMANDS[name][1])
    module.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except FlanJaxError as e:
        print(f"flan-jax {name}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
