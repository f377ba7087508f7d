"""Cost of the output projection: full [B, L, V] logits vs the head at the loss positions only.

    .venv/bin/python bench/head_cost.py [--config dec-50m|gemma-like|both] [--steps 3]
        [--batch 8] [--capacity 0.25]

Prints, per config and head path, seconds/step (median of --steps after one warm-up step, the
two paths' steps interleaved so both see the same machine load) and the compiled step's memory
(XLA memory_analysis: arguments + outputs - aliased + temporaries, the step's device peak). The step is the trainer's own
(`make_train_step` with `loss_options()`, only `head_capacity` changed: None = full logits,
else `loss.head_cross_entropy_loss`), float32, Adafactor, one CPU device.

Batches are FLAN-like packed rows: examples with inputs of log-normal length (median 120,
clipped to [8, 256] and to the row) and targets (median 24, clipped to [2, 32]) packed first-fit
into rows (until 100 examples in a row fit nowhere);
loss weights on the targets only (about 13% of the positions, printed).
dec-50m: bench/train_throughput.py's Llama-style 50M shape (vocab 32000, emb 512, 8 layers),
rows of 512. gemma-like: a 2-layer decoder with Gemma 3's 262,144-token vocabulary, emb 640,
tied embeddings (4 heads x 256, 1 kv head, mlp 2048), rows of 256.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from flan_jax.models import params_io  # noqa: E402
from flan_jax.models.decoder import DecoderConfig  # noqa: E402
from flan_jax.train.mesh import make_mesh  # noqa: E402
from flan_jax.train.optim import adafactor  # noqa: E402
from flan_jax.train.state import create_state, state_shardings  # noqa: E402
from flan_jax.train.step import jit_train_step, make_train_step, model_apply_fn  # noqa: E402
from flan_jax.train.train_setup import loss_options  # noqa: E402

CONFIGS = {
    "dec-50m": (DecoderConfig(vocab_size=32000, emb_dim=512, num_heads=8, num_kv_heads=8, head_dim=64,
                              mlp_dim=1536, num_layers=8), 512),
    "gemma-like": (DecoderConfig(vocab_size=262144, emb_dim=640, num_heads=4, num_kv_heads=1, head_dim=256,
                                 mlp_dim=2048, num_layers=2, tie_embeddings=True), 256),
}


def flan_like_rows(batch: int, length: int, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Packed decoder rows (first fit, in arrival order) of synthetic FLAN-like examples."""
    rng = np.random.default_rng(seed)
    fields = {k: np.zeros((batch, length), np.int32) for k in
              ("decoder_target_tokens", "decoder_segment_ids", "decoder_positions", "decoder_loss_weights")}
    fill = [0] * batch
    segment = [0] * batch
    misses = 0
    while misses < 100:  # stop once 100 examples in a row fit nowhere
        lt = int(np.clip(rng.lognormal(np.log(24), 0.6), 2, 32))
        li = int(np.clip(rng.lognormal(np.log(120), 0.6), 8, min(256, length - lt)))
        n = li + lt
        row = next((r for r in range(batch) if fill[r] + n <= length), None)
        if row is None:
            misses += 1
            continue
        misses = 0
        s = slice(fill[row], fill[row] + n)
        segment[row] += 1
        fields["decoder_target_tokens"][row, s] = rng.integers(2, vocab, n)
        fields["decoder_segment_ids"][row, s] = segment[row]
        fields["decoder_positions"][row, s] = np.arange(n)
        fields["decoder_loss_weights"][row, fill[row] + li: fill[row] + n] = 1
        fill[row] += n
    t = fields["decoder_target_tokens"]
    inputs = np.concatenate([np.zeros((batch, 1), np.int32), t[:, :-1]], axis=1)
    fields["decoder_input_tokens"] = np.where(fields["decoder_positions"] == 0, 0, inputs).astype(np.int32)
    return fields


def prepare(config: DecoderConfig, batch_np: dict, capacity: float | None) -> dict:
    """Compile the trainer's step for one head path; its memory analysis and a fresh state."""
    module = params_io.build_model(config)
    optimizer = adafactor()
    mesh = make_mesh((1, 1, 1), devices=jax.devices()[:1])
    example = {k: v[:1] for k, v in batch_np.items()}
    abstract, shardings = state_shardings(module, optimizer.tx, example, mesh)
    kwargs = dict(loss_options(), head_capacity=capacity)
    step = jit_train_step(make_train_step(model_apply_fn(module), optimizer, loss_kwargs=kwargs, mesh=mesh),
                          mesh, shardings)
    batch = {k: jnp.asarray(v) for k, v in batch_np.items()}
    state_in = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
    compiled = step.jitted.lower(state_in, batch).compile()  # compiled once, run below
    mem = compiled.memory_analysis()
    peak = (mem.argument_size_in_bytes + mem.output_size_in_bytes - mem.alias_size_in_bytes
            + mem.temp_size_in_bytes)
    state = create_state(module, optimizer.tx, example, abstract, shardings, seed=0)
    return {"compiled": compiled, "state": state, "batch": batch, "times": [], "losses": [],
            "peak_gib": peak / 2**30, "temp_gib": mem.temp_size_in_bytes / 2**30}


def step_once(run: dict, timed: bool) -> None:
    t = time.perf_counter()
    run["state"], metrics = run["compiled"](run["state"], run["batch"])
    run["losses"].append(float(metrics["loss"]))  # waits for the step
    if timed:
        run["times"].append(time.perf_counter() - t)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", choices=[*CONFIGS, "both"], default="both")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--capacity", type=float, default=loss_options()["head_capacity"])
    args = p.parse_args()
    names = list(CONFIGS) if args.config == "both" else [args.config]
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs; batch {args.batch}; median of {args.steps} steps")
    print("| config | rows | loss positions | head | s/step | step peak GiB | temporaries GiB | step-1 loss |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        config, length = CONFIGS[name]
        batch_np = flan_like_rows(args.batch, length, config.vocab_size)
        share = float(np.mean(batch_np["decoder_loss_weights"] > 0))
        runs = {f"positions ({args.capacity})": prepare(config, batch_np, args.capacity),
                "full logits": prepare(config, batch_np, None)}
        # Interleaved (positions, full, positions, ...) after one warm-up step each, so both see
        # the same load on a shared machine; the ratio is of the medians.
        for i in range(args.steps + 1):
            for r in runs.values():
                step_once(r, timed=i > 0)
        for label, r in runs.items():
            r["s_per_step"] = statistics.median(r["times"])
            print(f"| {name} | {args.batch} x {length} | {share:.1%} | {label} | {r['s_per_step']:.2f} | "
                  f"{r['peak_gib']:.2f} | {r['temp_gib']:.2f} | {r['losses'][0]:.4f} |", flush=True)
        pos, full = runs.values()
        print(f"({name}: positions / full = {pos['s_per_step'] / full['s_per_step']:.2f}x time, "
              f"{pos['peak_gib'] / full['peak_gib']:.2f}x peak memory)", flush=True)
        del pos, full
        runs.clear()  # free both states and executables before the next config
        jax.clear_caches()
    return 0


if __name__ == "__main__":
    sys.exit(main())
