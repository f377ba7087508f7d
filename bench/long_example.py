"""The data side of a training step with one pathological example in the mixture (issue 25 item 7).

    .venv/bin/python bench/long_example.py [--turns 4000] [--batches 2]

Writes two local chat files to a temporary folder: 20 two-turn conversations ("normal"), and the
same plus one line of `--turns` turns ("pathological"), declares a mixture over each
(`{local = ...}`: zs_noopt, fs_noopt and the other local variants), registers it as `train`
does for inputs length 128 and reads `--batches` packed decoder batches of 8 rows
(inputs 128 + targets 32, as gin_configs/experiments/flan_mini_decoder_tiny.gin) through
`pipeline.batches`, the trainer's reader. Prints seconds and the pipeline's counts per file
(the first "normal" pass includes TensorFlow's warm-up).
The best-fit packer reads up to 1024 examples before its first row, so the long line is read
~50 times; before the fix each read tokenized the whole line (and every few-shot prompt that drew
it as an exemplar counted its tokens whole). Prints figures, not a pass/fail test.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_files(folder: Path, turns: int) -> None:
    normal = [{"messages": [{"role": "user", "content": f"Question {j}?"},
                            {"role": "assistant", "content": f"Answer {j}."}]} for j in range(20)]
    long_line = {"messages": [{"role": "user" if i % 2 == 0 else "assistant",
                               "content": f"Turn number {i} says hello to the other side, with some words."}
                              for i in range(turns)]}
    for name, rows in (("normal", normal), ("pathological", normal + [long_line])):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    toml = ""
    for name in ("normal", "pathological"):
        toml += (f'[local.{name}]\nfile_pattern = "{folder / name}.jsonl"\nformat = "chat"\n\n'
                 f'[mixture.bench_{name}]\nrate = "equal"\ninclude = [{{ local = "{name}" }}]\n\n')
    (folder / "bench_long.toml").write_text(toml)
    print(f"pathological line: {turns} turns, {len(json.dumps(long_line)) / 1e3:.0f} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=4000)
    parser.add_argument("--batches", type=int, default=2)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_long_"))
    write_files(folder, args.turns)
    os.environ["FLAN_JAX_MIXTURES_PATH"] = str(folder)
    from flan_jax.data.features import pipeline
    from flan_jax.train import train_data

    for name in ("normal", "normal", "pathological"):  # the first pass warms TensorFlow up
        mixture = f"bench_{name}"
        start = time.perf_counter()
        try:
            train_data.register(mixture, "decoder", 128)
        except TypeError:  # a flan_jax from before the fix: no inputs length to register with
            train_data.register(mixture, "decoder")
        it = pipeline.batches(mixture, "decoder", {"inputs": 128, "targets": 32}, 8, num_epochs=None)
        for _ in range(args.batches):
            next(it)
        stats = it.stats.as_dict()
        print(f"{name:13s} {time.perf_counter() - start:6.1f} s  examples={stats['examples']} "
              f"truncated={stats['truncated']} rows={stats['rows']}")


if __name__ == "__main__":
    main()
