"""Cost of the head's overflow chunks: loss positions beyond the first chunk of
`loss.head_cross_entropy_loss`, looped over (this repository's `_overflow_sums`) against the
`lax.scan` over every chunk with a skipped branch per empty chunk that it replaced (kept here as
the reference).

    .venv/bin/python bench/head_overflow.py [--counts 90,150,300,460] [--repeats 5]

Gemma 3 270M's tied head ([262144, 640] table) on the flan-nl job's rows (8 x 128 positions,
`head_capacity` 0.1: chunks of 104 positions), float32, one CPU device. For each count of loss
positions (the flan-nl control tuning's steps hold 81-463), prints the seconds of one jitted
value-and-gradient of the loss w.r.t. the hidden states and the table (best of --repeats, the two
variants interleaved), their ratio, and whether both give the same loss and gradients.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from flan_jax.models.layers import OutputHead  # noqa: E402
from flan_jax.train import loss  # noqa: E402

VOCAB, EMB, ROWS, LENGTH, CAPACITY = 262144, 640, 8, 128, 0.1


def scan_overflow_sums(chunk_sums, chunk, h, kernel, t, w, order, valid):
    """The reference: a scan over all K overflow chunks, each skipped by `lax.cond` when it holds
    no loss position and rematerialised in the backward (`jax.checkpoint`)."""
    groups = order.shape[0]
    order = jnp.swapaxes(order.reshape(groups, -1, chunk), 0, 1)
    valid = jnp.swapaxes(valid.reshape(groups, -1, chunk), 0, 1)
    zeros = (jnp.zeros((), jnp.float32),) * 3

    @jax.checkpoint
    def one(h, kernel, index, ok):
        return jax.lax.cond(jnp.any(ok), lambda: chunk_sums(h, kernel, t, w, index, ok), lambda: zeros)

    def body(acc, xs):
        return jax.tree.map(jnp.add, acc, one(h, kernel, *xs)), None

    return jax.lax.scan(body, zeros, (order, valid))[0]


def case(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    hidden = jnp.asarray(rng.normal(size=(ROWS, LENGTH, EMB)).astype(np.float32))
    table = jnp.asarray((rng.normal(size=(VOCAB, EMB)) * 0.02).astype(np.float32))
    weights = np.zeros(ROWS * LENGTH, np.float32)
    weights[rng.choice(ROWS * LENGTH, count, replace=False)] = 1.0
    batch = {"decoder_target_tokens": rng.integers(0, VOCAB, (ROWS, LENGTH)).astype(np.int32),
             "decoder_loss_weights": weights.reshape(ROWS, LENGTH)}
    return hidden, table, batch


def grad_fn():
    def f(h, table, batch):
        head = OutputHead(table, transposed=True, input_scale=1.0)
        return loss.head_cross_entropy_loss(h, head, batch, capacity=CAPACITY)[0]
    return jax.jit(jax.value_and_grad(f, argnums=(0, 1)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="90,150,300,460")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    looped = grad_fn()
    real = loss._overflow_sums
    loss._overflow_sums = scan_overflow_sums
    scanned = grad_fn()  # traced on first call, with the reference in place
    print(f"head [{VOCAB}, {EMB}] tied, {ROWS} x {LENGTH} positions, capacity {CAPACITY} "
          f"(chunks of {loss.head_chunk_size(ROWS * LENGTH, CAPACITY)})")
    print("loss positions | overflow chunks | loop s | scan s | loop / scan | same")
    for count in (int(c) for c in args.counts.split(",")):
        h, table, batch = case(count)
        outs, best = {}, {"loop": float("inf"), "scan": float("inf")}
        for i in range(args.repeats + 1):
            for name, fn in (("loop", looped), ("scan", scanned)):
                loss._overflow_sums = real if name == "loop" else scan_overflow_sums
                start = time.perf_counter()
                outs[name] = jax.block_until_ready(fn(h, table, batch))
                if i:  # the first call compiles
                    best[name] = min(best[name], time.perf_counter() - start)
        same = all(np.allclose(a, b, rtol=1e-4, atol=1e-6)
                   for a, b in zip(jax.tree.leaves(outs["loop"]), jax.tree.leaves(outs["scan"])))
        chunk = loss.head_chunk_size(ROWS * LENGTH, CAPACITY)
        print(f"{count} | {max(0, -(-count // chunk) - 1)} | {best['loop']:.3f} | {best['scan']:.3f} | "
              f"{best['loop'] / best['scan']:.2f} | {same}", flush=True)
    loss._overflow_sums = real


if __name__ == "__main__":
    main()
