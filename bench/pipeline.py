"""Input pipeline at scale: uncached (render + tokenize + pack) vs cached (ArrayRecord + Grain + pack).

    .venv/bin/python bench/pipeline.py [--examples-per-task 400] [--batches 40] [--workers 1,2,4]

Prints, per host (this process), non-pad tokens/s of packed batches (decoder format, rows of
512 = 448 + 64, batch 16):
* flan-mini: `pipeline.batches("flan_mini_all")` (uncached, one thread) against the cache of the
  same mixture read by `cached_pipeline.CachedBatches` with 0 (in-process), 1, 2 and 4 workers;
* a FLAN-2021-length mix (log-normal inputs, median 180 tokens; targets median 6, as in
  bench/packing.py), cached, beside `pipeline.batches` over the same token lists (which skips
  rendering, so it over-states the uncached speed);
* resume: seconds to the first batch at data positions of 10, 10k and 1M batches (cached: one
  block re-packed; uncached: replays the stream, measured at 10 and 100 batches and extrapolated);
* the loader's peak memory (VmHWM growth while reading);
* what a TPU v5e host needs: tokens/s = 4 chips x 197 TFLOP/s bf16 x 50% MFU / (6 x params).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from flan_jax.data import cache, cached_pipeline, pipeline  # noqa: E402

LENGTHS = {"inputs": 448, "targets": 64}
BATCH = 16


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _tokens_per_s(make_iterator, n: int) -> float:
    """Non-pad tokens/s over n batches, timed from the iterator's creation (start-up included:
    worker processes compute blocks ahead, so a run shorter than that would time only the queue)."""
    start, tokens = time.perf_counter(), 0
    iterator = make_iterator()
    for _ in range(n):
        batch = next(iterator)
        tokens += int(np.count_nonzero(batch["decoder_target_tokens"]))
    elapsed = time.perf_counter() - start
    getattr(iterator, "close", lambda: None)()
    return tokens / elapsed


def _write_synthetic_task(out: Path, name: str, examples: list[dict]) -> None:
    """A cache folder for token lists that no seqio task renders (the FLAN-2021-length mix)."""
    from array_record.python import array_record_module as ar

    folder = cache.task_dir(out, name)
    folder.mkdir(parents=True, exist_ok=True)
    writer = ar.ArrayRecordWriter(str(folder / "train-00000-of-00001.array_record"), "group_size:1")
    for ex in examples:
        writer.write(cache.encode_example(ex))
    writer.close()


def flan_like(n: int, rng: np.random.Generator) -> list[dict]:
    li = np.clip(rng.lognormal(np.log(180), 1.1, n), 8, 4000).astype(int)
    lt = np.clip(rng.lognormal(np.log(6), 1.3, n), 2, 800).astype(int)
    return [{"inputs": rng.integers(3, 1000, a).astype(np.int32),
             "targets": np.r_[rng.integers(3, 1000, b - 1), 1].astype(np.int32)} for a, b in zip(li, lt)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples-per-task", type=int, default=400)
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    from flan_jax.data import mixtures

    workers = [0] + [int(w) for w in args.workers.split(",") if w]
    tmp = Path(tempfile.mkdtemp(prefix="flan_jax_bench_"))
    results: dict[str, float] = {}

    # ---- flan-mini: uncached vs cached
    leaves = mixtures.register_mixture("flan_mini_all")
    rates = cached_pipeline.resolve_rates(leaves)
    hwm0 = _vm_hwm_mb()
    results["flan_mini uncached"] = _tokens_per_s(
        lambda: pipeline.batches("flan_mini_all", "decoder", LENGTHS, BATCH, seed=0, num_epochs=None), args.batches)
    start = time.perf_counter()
    cache.cache_tasks(list(rates), str(tmp / "mini"), max_examples=args.examples_per_task)
    print(f"cached flan_mini_all ({len(rates)} tasks x {args.examples_per_task}) in "
          f"{time.perf_counter() - start:.1f} s", flush=True)
    spec = cached_pipeline.BlockSpec(cached_pipeline.stream_spec(str(tmp / "mini"), rates, "train"),
                                     "decoder", tuple(LENGTHS.items()), block_size=1024)
    for w in workers:
        results[f"flan_mini cached, {w} workers"] = _tokens_per_s(
            lambda: cached_pipeline.CachedBatches(spec, BATCH, workers=w), args.batches)
    results["loader peak MB (flan-mini, all runs)"] = _vm_hwm_mb() - hwm0

    # ---- FLAN-2021-length mix
    rng = np.random.default_rng(0)
    examples = flan_like(4000, rng)
    _write_synthetic_task(tmp / "flan", "synthetic.flan_like:train", examples)
    folder = cache.task_dir(tmp / "flan", "synthetic.flan_like:train")
    stream = cached_pipeline.StreamSpec(((str(folder / "train-00000-of-00001.array_record"),),),
                                        (len(examples),), (1.0,))
    flan_spec = cached_pipeline.BlockSpec(stream, "decoder", tuple(LENGTHS.items()), block_size=1024)
    results["flan-like uncached (no rendering)"] = _tokens_per_s(
        lambda: pipeline.batches(examples * 50, "decoder", LENGTHS, BATCH), args.batches)
    for w in workers:
        results[f"flan-like cached, {w} workers"] = _tokens_per_s(
            lambda: cached_pipeline.CachedBatches(flan_spec, BATCH, workers=w), args.batches)

    # ---- resume time vs data position
    rows_per_block = len(cached_pipeline.block_rows(spec, 0)[0])
    for n in (10, 10_000, 1_000_000):
        block = n * BATCH // max(rows_per_block, 1)
        start = time.perf_counter()
        next(cached_pipeline.CachedBatches(spec, BATCH, state={"block": block, "row": 0}))
        results[f"resume at {n} batches, cached (s)"] = time.perf_counter() - start
    per_batch = {}
    for n in (10, 100):
        start = time.perf_counter()
        next(pipeline.batches("flan_mini_all", "decoder", LENGTHS, BATCH, seed=0, num_epochs=None, start_batch=n))
        per_batch[n] = time.perf_counter() - start
    slope = (per_batch[100] - per_batch[10]) / 90
    for n in (10, 10_000, 1_000_000):
        results[f"resume at {n} batches, uncached (s{'' if n <= 100 else ', extrapolated'})"] = (
            per_batch[10] + slope * (n - 10))

    print(f"\n{'run':52s} {'value':>14s}")
    for k, v in results.items():
        print(f"{k:52s} {v:14.1f}")
    base = results["flan_mini uncached"]
    print("\ncached / uncached tokens/s (flan-mini): " + ", ".join(
        f"{w} workers {results[f'flan_mini cached, {w} workers'] / base:.1f}x" for w in workers))

    print("\nTPU v5e host (4 chips, 197 TFLOP/s bf16 each, 50% MFU): tokens/s needed per host")
    best = max(results[f"flan-like cached, {w} workers"] for w in workers)
    for name, params in (("T5-XXL (11.1B)", 11.1e9), ("decoder_8b (8.0B)", 8.0e9), ("Gemma 3 270M", 0.268e9)):
        need = 4 * 197e12 * 0.5 / (6 * params)
        print(f"  {name:22s} {need:12,.0f}   cached loader here: {best / need:6.2f}x of it")
    print(json.dumps({k: round(v, 3) for k, v in results.items()}), file=sys.stderr)


if __name__ == "__main__":
    main()
