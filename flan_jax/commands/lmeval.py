"""`flan-jax lm-eval`: lm-evaluation-harness's own command line, with the "flan_jax" model known.

    flan-jax lm-eval --model flan_jax --model_args checkpoint=CKPT,vocabulary=spm.model \\
        --tasks my_task --include_path my_tasks/ --output_path results/
    flan-jax lm-eval ls tasks --include_path my_tasks/

Every argument goes to lm-eval 0.4.13 unchanged (`lm-eval --help`); `--model` defaults to
flan_jax. lm-eval's own `lm-eval` program cannot find the model: its registry has no plugin
entry point for models, only the classes its code imports, so this command imports
`flan_jax.eval.lm_eval_model` (which registers "flan_jax") and then runs lm-eval's CLI. Nothing
is downloaded: HF_DATASETS_OFFLINE and HF_HUB_OFFLINE default to 1 (tasks over local files:
`dataset_path: json` with `dataset_kwargs: {data_files: ...}`); set them to 0 for hub datasets.
Needs the optional extra: `pip install -e .[lm_eval]`.
"""
from __future__ import annotations

import argparse
import os
import sys

from flan_jax.errors import FlanJaxError

PASSES_ARGUMENTS = True  # cli.py hands every argument over unparsed (args.argv)
SUBCOMMANDS = ("run", "ls", "validate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("argv", nargs="*", help="lm-eval's own arguments (lm-eval --help)")


def lm_eval_argv(argv: list[str]) -> list[str]:
    """lm-eval's argv: `run` inserted unless a subcommand is named, `--model flan_jax` added
    unless a model is named. ["--tasks", "t"] -> ["run", "--tasks", "t", "--model", "flan_jax"]."""
    argv = list(argv)
    if argv and argv[0] in ("-h", "--help"):
        return argv
    if not argv or argv[0] not in SUBCOMMANDS:
        argv = ["run", *argv]
    if argv[0] == "run" and not any(a == "--model" or a.startswith("--model=") for a in argv):
        argv += ["--model", "flan_jax"]
    return argv


def run(args: argparse.Namespace) -> int:
    try:
        from lm_eval._cli import HarnessCLI  # noqa: PLC0415

        if not {"-h", "--help"} & set(args.argv):  # help needs no model (nor JAX)
            import flan_jax.eval.lm_eval_model  # noqa: F401,PLC0415  (registers "flan_jax")
    except ImportError as e:
        raise FlanJaxError(f"lm-eval is not installed ({e}); pip install -e '.[lm_eval]'") from None
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    saved = sys.argv
    sys.argv = ["lm-eval", *lm_eval_argv(args.argv)]
    try:
        cli = HarnessCLI()
        cli.execute(cli.parse_args())
    finally:
        sys.argv = saved
    return 0
