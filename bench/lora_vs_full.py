"""LoRA vs full fine-tuning on one config: step time, peak memory, optimizer-state bytes.

    .venv/bin/python bench/lora_vs_full.py [--batch 4] [--seq 256] [--steps 5] [--warmup 1]
        [--rank 8] [--modes full,lora,lora-bf16]

Model: dec-50m (bench/train_throughput.py's Llama-style config: hidden 512, 8 layers, 8 heads,
SwiGLU 1536, vocab 32000, untied: 60.0M parameters, 27.3M without the embedding tables), AdamW, synthetic rows
with loss on every position, one CPU device. Modes:

    full       every parameter trained (AdamW moments for all of them)
    lora       LoRA rank --rank (alpha 2r) on attention q/k/v/o and the MLP (targets "heads",
               "kv_heads", "mlp"); base frozen in float32
    lora-bf16  the same with the frozen base stored in bfloat16 (LoraConfig.base_dtype)

Each mode runs in its own process (so peak memory is its own): the trainer's state and step
(`state_shardings`/`create_state` or `lora_training.*`, `make_train_step`, `jit_train_step`),
with the CLI's glibc malloc settings (flan_jax/host_malloc.py). Per mode it prints:

    s/step        median (and min: the least disturbed by other processes) of --steps steps
                  after 1 + --warmup untimed ones (the step is compiled ahead of time; compile s
                  is printed separately)
    peak RSS      the process's maximum resident set (getrusage), and its rise over the RSS
                  measured after importing JAX, before the model is built
    XLA GFLOP     the compiled step's FLOP count (`compiled.cost_analysis()`), which does not
                  depend on the machine's load
    XLA step MB   the compiled step's arguments + temporaries + outputs not aliased to donated
                  arguments (`compiled.memory_analysis()`): what one step needs, without the
                  Python / runtime overhead in RSS
    trained       trainable parameters; opt-state MB: bytes of the optimizer state arrays;
    frozen MB     bytes of the frozen base (LoRA) 

Ratios are LoRA / full. Prints figures, not a timed test.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

MODES = ("full", "lora", "lora-bf16")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--run", choices=MODES, help=argparse.SUPPRESS)  # internal: one mode, JSON out
    return p.parse_args(argv)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_one(args: argparse.Namespace) -> dict:
    """One mode in this process; returns its figures."""
    from flan_jax import host_malloc

    host_malloc.reexec_with_tuned_malloc()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import numpy as np

    from flan_jax.models import lora, params_io
    from flan_jax.models.sharding import LOGICAL_AXIS_RULES, rules_for_mesh
    from flan_jax.models.decoder import DecoderConfig
    from flan_jax.train import lora_training
    from flan_jax.train.mesh import make_mesh
    from flan_jax.train.optim import adamw
    from flan_jax.train.state import create_state, num_params, state_shardings
    from flan_jax.train.step import jit_train_step, make_train_step, model_apply_fn
    from flan_jax.train.synthetic import synthetic_batch
    from flan_jax.train.train_setup import loss_options

    baseline = _rss_mb()
    config = DecoderConfig(vocab_size=32000, emb_dim=512, num_heads=8, num_kv_heads=8, head_dim=64,
                           mlp_dim=1536, num_layers=8, tie_embeddings=False)
    module = params_io.build_model(config)
    optimizer = adamw()
    mesh = make_mesh((1, 1, 1), devices=jax.devices()[:1])
    batch_np = synthetic_batch("decoder", {"inputs": args.seq // 2, "targets": args.seq - args.seq // 2},
                               args.batch, 32000, 0)
    batch_np["decoder_loss_weights"] = np.ones_like(batch_np["decoder_loss_weights"])
    example = {k: v[:1] for k, v in batch_np.items()}
    if args.run == "full":
        abstract, shardings = state_shardings(module, optimizer.tx, example, mesh)
        state = create_state(module, optimizer.tx, example, abstract, shardings, seed=0)
        apply = model_apply_fn(module)
    else:
        cfg = lora.LoraConfig(rank=args.rank, alpha=2.0 * args.rank, targets=("heads", "kv_heads", "mlp"),
                              base_dtype="bfloat16" if args.run == "lora-bf16" else "float32")
        abstract, shardings = lora_training.state_shardings(module, cfg, optimizer.tx, example, mesh)
        base = lora_training.frozen_base(module, example, abstract, shardings, 0)
        state = lora_training.create_state(module, cfg, optimizer.tx, example, abstract, shardings, base, 0)
        apply = lora_training.apply_fn(module, cfg)
    loss_kwargs = dict(loss_options(), head_capacity=None)  # every position has loss
    step = jit_train_step(make_train_step(apply, optimizer, loss_kwargs=loss_kwargs, mesh=mesh), mesh, shardings)
    batch = {k: jnp.asarray(v) for k, v in batch_np.items()}
    t = time.perf_counter()
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules_for_mesh(mesh, LOGICAL_AXIS_RULES)):
        compiled = step.jitted.lower(state, batch).compile()  # the trainer's own jitted step
    compile_s = time.perf_counter() - t
    mem = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost  # one dict per program in older JAX
    xla_mb = (mem.argument_size_in_bytes + mem.temp_size_in_bytes + mem.output_size_in_bytes
              - mem.alias_size_in_bytes) / 2**20
    nbytes = lambda tree: sum(x.nbytes for x in jax.tree.leaves(tree) if hasattr(x, "nbytes"))  # noqa: E731
    figures = {"mode": args.run, "trained": num_params(abstract.params),
               "opt_state_mb": nbytes(state.opt_state) / 2**20,
               "trained_mb": nbytes(state.params) / 2**20,
               "frozen_mb": nbytes(state.frozen) / 2**20 if state.frozen is not None else 0.0,
               "xla_step_mb": xla_mb, "xla_gflop": float(cost.get("flops", float("nan"))) / 1e9}
    holder = {"state": state}

    def once() -> float:
        holder["state"], metrics = compiled(holder["state"], batch)
        return float(jax.block_until_ready(metrics["loss"]))

    figures["compile_s"] = compile_s
    for _ in range(1 + args.warmup):
        once()
    times, losses = [], []
    for _ in range(args.steps):
        t = time.perf_counter()
        losses.append(once())
        times.append(time.perf_counter() - t)
    figures.update(s_per_step=statistics.median(times), min_s_per_step=min(times), loss=losses[-1], baseline_rss_mb=baseline,
                   peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return figures


def main(args: argparse.Namespace) -> int:
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        print(f"unknown modes {unknown}; choose from {MODES}", file=sys.stderr)
        return 2
    print(f"dec-50m, AdamW, batch {args.batch} x seq {args.seq}, 1 CPU device; LoRA rank {args.rank}, "
          f"alpha {2 * args.rank}, attention + MLP; median of {args.steps} steps after 1 + {args.warmup}")
    results = {}
    for mode in modes:
        cmd = [sys.executable, os.path.abspath(__file__), "--run", mode, "--batch", str(args.batch),
               "--seq", str(args.seq), "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--rank", str(args.rank)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}
        env.pop("XLA_FLAGS", None)  # one real device, whatever the caller's fake-device flags
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            return 1
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    header = ("| mode | trained params | s/step | min s/step | XLA GFLOP/step | compile s | peak RSS MB (rise) | XLA step MB | "
              "opt-state MB | trained MB | frozen MB |")
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mode, r in results.items():
        print(f"| {mode} | {r['trained'] / 1e6:.2f}M | {r['s_per_step']:.3f} | {r['min_s_per_step']:.3f} | "
              f"{r['xla_gflop']:.1f} | "
              f"{r['compile_s']:.1f} | {r['peak_rss_mb']:.0f} "
              f"({r['peak_rss_mb'] - r['baseline_rss_mb']:.0f}) | {r['xla_step_mb']:.0f} | "
              f"{r['opt_state_mb']:.1f} | {r['trained_mb']:.1f} | {r['frozen_mb']:.1f} |")
    if "full" in results:
        full = results["full"]
        for mode, r in results.items():
            if mode == "full":
                continue
            print(f"{mode} / full: step time {r['s_per_step'] / full['s_per_step']:.2f} (min "
                  f"{r['min_s_per_step'] / full['min_s_per_step']:.2f}), XLA FLOPs "
                  f"{r['xla_gflop'] / full['xla_gflop']:.2f}, peak RSS rise "
                  f"{(r['peak_rss_mb'] - r['baseline_rss_mb']) / (full['peak_rss_mb'] - full['baseline_rss_mb']):.2f}, "
                  f"XLA step memory {r['xla_step_mb'] / full['xla_step_mb']:.2f}, optimizer state "
                  f"{r['opt_state_mb'] / full['opt_state_mb']:.4f}")
    return 0


if __name__ == "__main__":
    ARGS = parse_args()
    if ARGS.run:
        print(json.dumps(run_one(ARGS)))
        sys.exit(0)
    sys.exit(main(ARGS))
