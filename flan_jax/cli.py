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

from flan_jax import host_malloc, noise
from flan_jax.errors import FlanJaxError

MIXTURES_PATH_ENV = "FLAN_JAX_MIXTURES_PATH"  # = flan_jax.data.mixing.mixtures.MIXTURES_PATH_ENV

# name -> (module implementing it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "catalog": ("flan_jax.commands.catalog", "list every dataset with cluster, source and templates"),
    "show": ("flan_jax.commands.show", "print rendered examples of a task"),
    "check": ("flan_jax.commands.check",
              "validate a data file (every problem at once) and show its loss mask"),
    "mixture": ("flan_jax.commands.mixture", "print (and plot) a mixture's composition"),
    "convert": ("flan_jax.commands.convert", "convert HF checkpoints to/from flan_jax"),
    "score": ("flan_jax.commands.score", "print the log-likelihood of targets given inputs"),
    "train": ("flan_jax.commands.train", "train with gin configs (t5x-style flags)"),
    "compile": ("flan_jax.commands.compile", "AOT-compile the train step for a TPU topology"),
    "eval": ("flan_jax.commands.eval", "evaluate a checkpoint on an evaluation mixture"),
    "generate": ("flan_jax.commands.generate", "print what a checkpoint generates for prompts (try a model)"),
    "lm-eval": ("flan_jax.commands.lmeval", "run lm-evaluation-harness with flan_jax models (the lm_eval extra)"),
    "cache": ("flan_jax.commands.cache", "render and tokenize a mixture once into ArrayRecord files"),
    "audit": ("flan_jax.commands.audit", "audit a mixture: duplicates, lengths, train/eval overlap"),
    "main": ("flan_jax.commands.main", "the main job: tune Gemma 3 270M on real held-in clusters, test held-out NLI"),
}


def _quiet_native_logs() -> None:
    if not noise.verbose():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    # Without TPU chips (/dev/accel*, /dev/vfio/N), keep JAX off libtpu (the `tpu` extra): it
    # would load anyway (~230 MB, start-up errors, /tmp/libtpu_lockfile). `compile` loads it itself.
    if not (glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*")):
        os.environ.setdefault("JAX_PLATFORMS", "cpu")


def _message(error: FlanJaxError) -> str:
    """The error's own line: gin appends "\n  In call to configurable 'name' (...)" to an error
    raised inside a configurable (real_job_options' checks); the line already names the value."""
    return str(error).split("\n  In call to configurable")[0]


def _take_mixtures_path(argv: list[str]) -> tuple[list[str], list[str]]:
    """Lifts every `--mixtures_path DIR` / `--mixtures_path=DIR` (any position) out of argv."""
    rest, dirs, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--mixtures_path" and i + 1 < len(argv):
            dirs.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith("--mixtures_path="):
            dirs.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
        i += 1
    return rest, dirs


def main(argv: list[str] | None = None) -> int:
    """Runs one subcommand. Called without `argv` (as the `flan-jax` program) it may first
    re-execute the process with tuned malloc settings (`flan_jax/host_malloc.py`)."""
    is_program = argv is None
    argv = sys.argv[1:] if argv is None else argv
    if "--verbose" in argv:  # any position: native start-up logs come back (flan_jax/noise.py)
        argv = [a for a in argv if a != "--verbose"]
        os.environ[noise.VERBOSE_ENV] = "1"
    argv, extra_mixtures = _take_mixtures_path(argv)
    if extra_mixtures:  # read by flan_jax.data.mixing.mixtures.mixture_files()
        known = [p for p in os.environ.get(MIXTURES_PATH_ENV, "").split(os.pathsep) if p]
        added = [d for d in dict.fromkeys(extra_mixtures) if d not in known]
        os.environ[MIXTURES_PATH_ENV] = os.pathsep.join(added + known)
    parser = argparse.ArgumentParser(
        prog="flan-jax", description=__doc__.splitlines()[0],
        epilog=f"--verbose (any position) or {noise.VERBOSE_ENV}=1 keeps TensorFlow's and "
               "sentencepiece's start-up log lines, which are hidden by default. "
               f"--mixtures_path DIR (any position, repeatable) or {MIXTURES_PATH_ENV} adds "
               "your mixture files (*.toml) to the shipped ones.")
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
    if not noise.verbose():
        noise.quiet_python_logs()
        if is_program:
            noise.filter_stderr()
    module = importlib.import_module(COMMANDS[name][0])
    cmd_parser = argparse.ArgumentParser(prog=f"flan-jax {name}", description=COMMANDS[name][1])
    module.add_arguments(cmd_parser)
    if getattr(module, "PASSES_ARGUMENTS", False):  # another program's command line (lm-eval)
        args = argparse.Namespace(argv=argv[1:])
    else:
        args = cmd_parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except FlanJaxError as e:
        print(f"flan-jax {name}: error: {_message(e)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `flan-jax catalog | head`: the reader stopped; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
