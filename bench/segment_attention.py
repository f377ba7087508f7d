"""Segment-aware attention on packed 2048-position rows: attention alone and the dec-50m step.

Rows come from the SFT peer data (`/work/shared/peers/make_sft_data.py` writes the JSONL; each
example = prompt + completion + EOS 1, as bench/sft_e2e.py reads it) packed by the trainer's
best-fit pipeline into rows of 1600 + 448 = 2048 positions. Variants, interleaved (each runs
once per round after one warm-up):
  whole      one block (`causal_blocks=1`): the full [L, L] product, masked
  causal-n   `causal_blocks=n`: query block i against keys [0, end of block i)
  skip-n     `causal_blocks=n, skip_masked_blocks=True` (models/block_attention.py)
Attention: B rows x 2048, H = 8, Dh = 64 (dec-50m's), float32, forward + backward (jax.vjp of
sum(out * cotangent)), median of --rounds. With --step: the trainer's dec-50m step (AdamW,
1 micro-batch of --step-rows rows) for the whole / causal-4 default / skip variants, medians of
--step-rounds; keep --step-rows small (1 row needs ~2.5 GiB).

    PYTHONPATH=. .venv/bin/python bench/segment_attention.py --data /tmp/sft_data.jsonl \
        [--rows 1] [--skip-batches 30] [--blocks 4,8,16] [--rounds 5] [--step --step-rows 1 --step-rounds 3]
Prints a table of medians and the share of causal block pairs the packed rows need.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.data.features import pipeline
from flan_jax.models import attention, block_attention


def packed_rows(path: str, rows: int, lengths=(1600, 448), skip_batches: int = 0) -> dict[str, np.ndarray]:
    examples = []
    with open(path) as f:
        for line in f:
            ex = json.loads(line)
            examples.append({"inputs": np.asarray(ex["prompt_ids"], np.int32),
                             "targets": np.asarray(ex["completion_ids"] + [1], np.int32)})
    it = pipeline.batches(examples, "decoder", {"inputs": lengths[0], "targets": lengths[1]},
                          batch_size=rows, pack=True)
    for _ in range(skip_batches):
        next(it)
    return next(it)


def timed(fn, *args) -> float:
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t


def attention_bench(seg: np.ndarray, blocks: list[int], rounds: int) -> dict[str, float]:
    b, length = seg.shape
    rng = np.random.default_rng(0)
    q, k, v, ct = (jnp.asarray(rng.normal(size=(b, length, 8, 64)), jnp.float32) for _ in range(4))
    mask = attention.make_attention_mask(jnp.asarray(seg), jnp.asarray(seg), causal=True)
    variants = {"whole": dict(causal_blocks=1)}
    for n in blocks:
        variants[f"causal-{n}"] = dict(causal_blocks=n)
        variants[f"skip-{n}"] = dict(causal_blocks=n, skip_masked_blocks=True)

    def fwd_bwd(kw):
        def f(q, k, v, mask, ct):
            out, vjp = jax.vjp(lambda q, k, v: attention.dot_product_attention(q, k, v, mask=mask, **kw), q, k, v)
            return out, vjp(ct)
        return jax.jit(f)

    fns = {name: fwd_bwd(kw) for name, kw in variants.items()}
    times = {name: [] for name in fns}
    for name, fn in fns.items():
        timed(fn, q, k, v, mask, ct)  # compile + warm-up
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(timed(fn, q, k, v, mask, ct))
    return {name: statistics.median(t) for name, t in times.items()}


def step_bench(batch: dict[str, np.ndarray], variants: dict[str, dict], rounds: int) -> dict[str, float]:
    import dataclasses

    from flan_jax.models import params_io
    from flan_jax.models.decoder import DecoderConfig
    from flan_jax.train.mesh import make_mesh
    from flan_jax.train.optim import adamw
    from flan_jax.train.state import create_state, state_shardings
    from flan_jax.train.step import jit_train_step, make_train_step, model_apply_fn
    from flan_jax.train.train_setup import loss_options

    base = DecoderConfig(vocab_size=32000, emb_dim=512, num_heads=8, num_kv_heads=8, head_dim=64,
                         mlp_dim=1536, num_layers=8, tie_embeddings=False)
    mesh = make_mesh((1, 1, 1), devices=jax.devices()[:1])
    opt = adamw()
    runs, states = {}, {}
    for name, fields in variants.items():
        module = params_io.build_model(dataclasses.replace(base, **fields))
        abstract, shardings = state_shardings(module, opt.tx, {k: v[:1] for k, v in batch.items()}, mesh)
        states[name] = create_state(module, opt.tx, {k: v[:1] for k, v in batch.items()}, abstract, shardings, seed=0)
        runs[name] = jit_train_step(make_train_step(model_apply_fn(module), opt, loss_kwargs=loss_options(),
                                                    mesh=mesh), mesh, shardings)
    dev = {k: jnp.asarray(v) for k, v in batch.items()}
    times, losses = {n: [] for n in runs}, {}
    for name, run in runs.items():  # compile + warm-up
        states[name], m = run(states[name], dev)
        losses[name] = float(m["loss"])
    for _ in range(rounds):
        for name, run in runs.items():
            t = time.perf_counter()
            states[name], m = run(states[name], dev)
            jax.block_until_ready(m["loss"])
            times[name].append(time.perf_counter() - t)
    print("step-1 losses (same params and batch):", {n: round(x, 6) for n, x in losses.items()})
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--rows", type=int, default=1)
    p.add_argument("--skip-batches", type=int, default=30,
                   help="take the batch after this many (the first rows hold the longest examples)")
    p.add_argument("--blocks", default="4,8,16")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--step", action="store_true")
    p.add_argument("--step-rows", type=int, default=1)
    p.add_argument("--step-rounds", type=int, default=3)
    p.add_argument("--step-blocks", type=int, default=16)
    args = p.parse_args()
    blocks = [int(x) for x in args.blocks.split(",")]

    batch = packed_rows(args.data, args.rows, skip_batches=args.skip_batches)
    seg = batch["decoder_segment_ids"]
    mask = attention.make_attention_mask(jnp.asarray(seg), jnp.asarray(seg), causal=True)
    print(f"rows {seg.shape}, segments per row {[int(r.max()) for r in seg]}, "
          f"visible / causal pairs {float(mask.sum()) / (seg.shape[0] * seg.shape[1] * (seg.shape[1] + 1) / 2):.3f}")
    for n in blocks:
        need = np.asarray(block_attention.needed_blocks(mask, n))
        print(f"  {n} blocks: {int(need.sum())} of {n * (n + 1) // 2} causal block pairs needed "
              f"({need.sum() / (n * (n + 1) / 2):.2f})")
    res = attention_bench(seg, blocks, args.rounds)
    print(f"attention forward+backward, B={seg.shape[0]}, L={seg.shape[1]}, H=8, Dh=64, f32, median of {args.rounds}:")
    for name, t in res.items():
        print(f"  {name:10s} {t * 1e3:8.1f} ms   {t / res['whole']:.2f}x whole")
    if args.step:
        step_batch = (batch if args.step_rows == args.rows else
                      packed_rows(args.data, args.step_rows, skip_batches=args.skip_batches))
        size = 2048 // args.step_blocks
        variants = {"whole": dict(causal_attention_blocks=1),
                    "causal-4": dict(causal_attention_blocks=4, skip_masked_attention_blocks=False),
                    f"skip-{args.step_blocks}": dict(skip_masked_attention_blocks=True, attention_block_size=size)}
        res = step_bench(step_batch, variants, args.step_rounds)
        print(f"dec-50m train step, {args.step_rows} x 2048 packed rows, 1 micro-batch, median of {args.step_rounds}:")
        for name, t in res.items():
            print(f"  {name:10s} {t:8.2f} s   {t / res['causal-4']:.2f}x causal-4")


if __name__ == "__main__":
    main()
