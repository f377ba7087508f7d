"""`flan-jax show TASK [-n N] [--split S] [--mock]`: print rendered examples with their metadata.

TASK is a task name as registered by flan_jax.data.tasks.registry (`flan2021.rte:zs_opt`); its dataset is
registered on the fly. `--mock` wraps the read in `tfds.testing.mock_data`, which makes random
examples from the TFDS builder's feature spec, so templates can be checked without downloads.

    $ flan-jax show flan2021.rte:eval -n 1 --mock
    === flan2021.rte:eval  example 0  (cluster nli, template 0, variant eval, shots 0)
    --- inputs
    ...
    --- targets
    yes
    --- options: yes | no    answer: yes
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from unittest import mock


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="task name, e.g. flan2021.rte:zs_opt")
    parser.add_argument("-n", type=int, default=3, help="number of examples (default 3)")
    parser.add_argument("--split", default="train", help="split to read (default train)")
    parser.add_argument("--mock", action="store_true", help="read TFDS mock data (no downloads)")
    parser.add_argument("--data_dir", default=None,
                        help="root of local data files (default $FLAN_JAX_DATA_DIR), e.g. "
                             "flan_jax/assets/samples for the bundled CoT samples")


def _vocabulary() -> "seqio.Vocabulary":
    """The project vocabulary if present; only text is printed, so bytes do as a fallback."""
    import seqio  # here, so `flan-jax show --help` does not start TensorFlow

    try:
        from flan_jax.data.features.vocab import default_vocabulary
    except ImportError:
        return seqio.ByteVocabulary()
    return default_vocabulary()


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def run(args: argparse.Namespace) -> int:
    from flan_jax.data.tasks.catalogue import ensure_task
    from flan_jax.data.tasks.registry import unknown

    from flan_jax.data.sources.source_choice import PACKAGED_ENV
    from flan_jax.data.tasks.listing import task_train_from

    context = contextlib.ExitStack()
    if args.mock:
        import tensorflow_datasets as tfds

        # Mock rows stand in for the TFDS data: no packaged copy is read instead.
        context.enter_context(mock.patch.dict(os.environ, {PACKAGED_ENV: "0"}))
        context.enter_context(tfds.testing.mock_data(
            num_examples=max(args.n, 2), policy=tfds.testing.MockPolicy.USE_CODE
        ))
    with context:
        task = ensure_task(args.task, _vocabulary(), data_dir=args.data_dir)
        if args.split not in task.splits:
            raise unknown(f"split of {args.task}", args.split, task.splits)
        source = task_train_from(args.task, args.split, data_dir=args.data_dir)
        if source:
            print(f"({args.task} {args.split}: the packaged {source} rows, train_from={source!r})",
                  file=sys.stderr)
        dataset = task.get_dataset(
            None, split=args.split, shuffle=False, try_in_mem_cache=False, use_cached=False
        )
        for i, ex in enumerate(dataset.take(args.n).as_numpy_iterator()):
            options = " | ".join(_text(o) for o in ex["options"]) or "(none)"
            print(f"=== {_text(ex['task'])}  example {i}  (cluster {_text(ex['cluster'])}, "
                  f"template {ex['template_index']}, variant {_text(ex['variant'])}, "
                  f"shots {ex['num_shots']})")
            print("--- inputs")
            print(_text(ex["inputs_pretokenized"]))
            print("--- targets")
            print(_text(ex["targets_pretokenized"]))
            print(f"--- options: {options}    answer: {_text(ex['answer'])}\n")
    return 0
