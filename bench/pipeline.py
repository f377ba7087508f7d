"""Input pipeline at scale: uncached (render + tokenize + pack) vs cached (ArrayRecord + Grain + pack).

    .venv/bin/python bench/pipeline.py [--examples-per-task 400] [--batches 60] [--cached-batches 400]
                                       [--flan-batches 1000] [--workers 1,2,4] [--block-size 256]

Prints, per host (this process), non-pad tokens/s of packed batches (decoder format, rows of
512 = 448 + 64, batch 16):
* flan-mini: `pipeline.batches("flan_mini_all")` (uncached, one thread) against the cache of the
  same mixture read by `cached_pipeline.CachedBatches` with 0 (in-process), 1, 2 and 4 workers;
* a FLAN-2021-length mix (log-normal inputs, median 180 tokens; targets median 6, as in
  bench/packing.py), cached, beside `pipeline.batches` over the same token lists (which skips
  rendering, so it over-states the uncached speed);
* resume: seconds to the first batch at data positions of 10, 10k and 1M batches (cached: one
  block re-packed; uncached: replays the stream, measured at 10 and 100 batches and extrapolated);
* the loader's peak memory per run (this process's VmHWM growth, reset before each run, and
  the worker processes' peak RSS);
* what a TPU v5e host needs: token positions/s = chips x 197 TFLOP/s bf16 x 50% MFU / (model
  FLOPs per token from train.metrics, as train() computes MFU), for 4- and 8-chip hosts.

Throughput is timed from the first batch (steady state); the start-up (spawning workers, the
first block) is printed beside it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from flan_jax.data.cache import writer as cache, cached_pipeline  # noqa: E402
from flan_jax.data.features import pipeline  # noqa: E402

LENGTHS = {"inputs": 448, "targets": 64}
BATCH = 16


def _status_mb(field: str, pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _reset_peak() -> None:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0: clear_refs 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _run(make_iterator, n: int) -> dict[str, float]:
    """One loader run of n batches:
    * tokens_s: non-pad tokens/s from the first batch to the n-th (steady state);
    * startup_s: seconds from the iterator's creation to the first batch (spawning workers,
      opening files, the first block);
    * main_mb: growth of this process's peak RSS over its RSS at the start (VmHWM, reset);
    * workers_mb: the packing worker processes' peak RSS, summed (their whole footprint)."""
    _reset_peak()
    rss0 = _status_mb("VmRSS")
    start = time.perf_counter()
    iterator = make_iterator()
    next(iterator)
    first = time.perf_counter()
    tokens = 0
    for _ in range(n - 1):
        tokens += int(np.count_nonzero(next(iterator)["decoder_target_tokens"]))
    elapsed = time.perf_counter() - first
    pool = getattr(iterator, "_pool", None)
    pids = list(getattr(pool, "_processes", None) or {})
    workers_mb = sum(_status_mb("VmHWM", pid) for pid in pids)
    getattr(iterator, "close", lambda: None)()
    return {"tokens_s": tokens / elapsed, "startup_s": first - start,
            "main_mb": _status_mb("VmHWM") - rss0, "workers_mb": workers_mb}


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


# v5e: 197 TFLOP/s bf16 peak per chip; hosts of 4 chips in multi-host slices (v5litepod-16 and
# up) and 8 in the single-host v5litepod-8 (Cloud TPU docs, "TPU v5e",
# https://cloud.google.com/tpu/docs/v5e: "Peak compute per chip (bf16) 197 TFLOPs")
V5E_PEAK, MFU = 197e12, 0.5
# (name, gin file, feature lengths): the lengths docs/tpu.md compiles them at (FLAN's 512/128
# for T5; 2048-token decoder rows)
TPU_MODELS = (("T5-XXL", "t5_1_1_xxl.gin", {"inputs": 512, "targets": 128}),
              ("decoder_8b", "decoder_8b.gin", {"inputs": 1024, "targets": 1024}),
              ("Gemma 3 270M", "gemma3_270m.gin", {"inputs": 1024, "targets": 1024}))


def flops_per_token(gin_file: str, lengths: dict[str, int]) -> tuple[float, int]:
    """(training FLOPs per token position, parameter count) of a model gin config, from
    `train.metrics.model_flops_per_step` (6 x non-embedding params x tokens + attention, the
    figure train() divides by the peak for MFU) on abstract parameters (jax.eval_shape: nothing
    is allocated). Positions = encoder + decoder positions of one row."""
    import gin
    import jax

    from flan_jax.models import params_io
    from flan_jax.commands.compile import _configured_model
    from flan_jax.train.metrics import model_flops_per_step
    from flan_jax.train.state import num_params
    from flan_jax.train.synthetic import synthetic_batch

    gin.clear_config()
    gin.parse_config_file(str(Path(__file__).parents[1] / "gin_configs" / "models" / gin_file))
    config = _configured_model()
    gin.clear_config()
    module = params_io.build_model(config)
    batch = synthetic_batch(module.FEATURE_FORMAT, lengths, 1, 8, 0)
    params = jax.eval_shape(lambda r: module.init(r, batch)["params"], jax.random.PRNGKey(0))
    params = jax.tree.map(lambda x: getattr(x, "value", x), params,
                          is_leaf=lambda x: hasattr(x, "value") and hasattr(x, "names"))
    shapes = {k: np.shape(v) for k, v in batch.items()}
    positions = sum(shapes[k][1] for k in ("encoder_input_tokens", "decoder_input_tokens") if k in shapes)
    return model_flops_per_step(params, config, shapes) / positions, num_params(params)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="flan_jax_bench_"))
    try:
        bench(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench(tmp: Path) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples-per-task", type=int, default=400)
    parser.add_argument("--batches", type=int, default=60, help="per uncached flan-mini run")
    parser.add_argument("--cached-batches", type=int, default=400, help="per cached flan-mini run")
    parser.add_argument("--flan-batches", type=int, default=1000, help="per FLAN-2021-length run")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--block-size", type=int, default=256)
    args = parser.parse_args()
    from flan_jax.data.mixing import mixtures

    workers = [0] + [int(w) for w in args.workers.split(",") if w]
    runs: dict[str, dict[str, float]] = {}
    resume: dict[str, float] = {}

    # ---- flan-mini: uncached vs cached
    leaves = mixtures.register_mixture("flan_mini_all")
    rates = cached_pipeline.resolve_rates(leaves)
    runs["flan-mini uncached (render + tokenize + pack)"] = _run(
        lambda: pipeline.batches("flan_mini_all", "decoder", LENGTHS, BATCH, seed=0, num_epochs=None), args.batches)
    start = time.perf_counter()
    cache.cache_tasks(list(rates), str(tmp / "mini"), max_examples=args.examples_per_task)
    print(f"cached flan_mini_all ({len(rates)} tasks x {args.examples_per_task}) in "
          f"{time.perf_counter() - start:.1f} s", flush=True)
    spec = cached_pipeline.BlockSpec(cached_pipeline.stream_spec(str(tmp / "mini"), rates, "train"),
                                     "decoder", tuple(LENGTHS.items()), block_size=args.block_size)
    for w in workers:
        runs[f"flan-mini cached, {w} workers"] = _run(
            lambda: cached_pipeline.CachedBatches(spec, BATCH, workers=w), args.cached_batches)

    # ---- FLAN-2021-length mix
    rng = np.random.default_rng(0)
    examples = flan_like(4000, rng)
    _write_synthetic_task(tmp / "flan", "synthetic.flan_like:train", examples)
    folder = cache.task_dir(tmp / "flan", "synthetic.flan_like:train")
    stream = cached_pipeline.StreamSpec(((str(folder / "train-00000-of-00001.array_record"),),),
                                        (len(examples),), (1.0,))
    flan_spec = cached_pipeline.BlockSpec(stream, "decoder", tuple(LENGTHS.items()), block_size=args.block_size)
    runs["FLAN-2021-length uncached, no rendering (upper bound)"] = _run(
        lambda: pipeline.batches(examples * 50, "decoder", LENGTHS, BATCH), args.flan_batches)
    for w in workers:
        runs[f"FLAN-2021-length cached, {w} workers"] = _run(
            lambda: cached_pipeline.CachedBatches(flan_spec, BATCH, workers=w), args.flan_batches)

    # ---- resume time vs data position
    rows_per_block = len(cached_pipeline.block_rows(spec, 0)[0])
    for n in (10, 10_000, 1_000_000):
        block = n * BATCH // max(rows_per_block, 1)
        start = time.perf_counter()
        next(cached_pipeline.CachedBatches(spec, BATCH, state={"block": block, "row": 0}))
        resume[f"resume at {n:,} batches, cached"] = time.perf_counter() - start
    per_batch = {}
    for n in (10, 100):
        start = time.perf_counter()
        next(pipeline.batches("flan_mini_all", "decoder", LENGTHS, BATCH, seed=0, num_epochs=None, start_batch=n))
        per_batch[n] = time.perf_counter() - start
    slope = (per_batch[100] - per_batch[10]) / 90
    for n in (10, 10_000, 1_000_000):
        resume[f"resume at {n:,} batches, uncached{'' if n <= 100 else ' (extrapolated)'}"] = (
            per_batch[10] + slope * (n - 10))

    print(f"\n{'run (non-pad tokens/s per host)':56s} {'tokens/s':>10s} {'start s':>8s} "
          f"{'main +MB':>9s} {'workers MB':>10s}")
    for k, r in runs.items():
        print(f"{k:56s} {r['tokens_s']:10,.0f} {r['startup_s']:8.1f} {r['main_mb']:9.0f} {r['workers_mb']:10.0f}")
    base = runs["flan-mini uncached (render + tokenize + pack)"]["tokens_s"]
    print("\ncached / uncached tokens/s (flan-mini): " + ", ".join(
        f"{w} workers {runs[f'flan-mini cached, {w} workers']['tokens_s'] / base:.1f}x" for w in workers))
    print()
    for k, v in resume.items():
        print(f"{k:56s} {v:10.1f} s")

    best = max(runs[f"FLAN-2021-length cached, {w} workers"]["tokens_s"] for w in workers)
    print(f"\nTPU v5e host at {MFU:.0%} MFU ({V5E_PEAK / 1e12:.0f} TFLOP/s bf16 per chip): token positions/s "
          f"a host consumes; best cached loader here {best:,.0f} non-pad tokens/s")
    print(f"  {'model':14s} {'params':>7s} {'GFLOP/token':>11s} {'4 chips':>10s} {'8 chips':>10s} {'loader/need (8)':>15s}")
    for name, gin_file, lengths in TPU_MODELS:
        per_token, n_params = flops_per_token(gin_file, lengths)
        need = {c: c * V5E_PEAK * MFU / per_token for c in (4, 8)}
        print(f"  {name:14s} {n_params / 1e9:6.2f}B {per_token / 1e9:11.2f} {need[4]:10,.0f} {need[8]:10,.0f} "
              f"{best / need[8]:14.1f}x")
    print(json.dumps({"runs": runs, "resume_s": resume}), file=sys.stderr)


if __name__ == "__main__":
    main()
