"""End-to-end SFT throughput, the flan_jax side of the TRL comparison (issue 16).

Reads the JSONL of `/work/shared/peers/make_sft_data.py` ({"prompt_ids", "completion_ids"} per
line) and trains on every example as inputs = prompt, targets = completion + [EOS 1] (loss on
the targets only), exactly what the peer scripts `sft_e2e_trl.py` / `sft_e2e_flan_jax.py` feed
their trainers. Model: "dec-50m" (DecoderConfig vocab 32000, emb 512, 8 heads of 64, 8 kv heads,
SwiGLU 1536, 8 layers, untied, float32), random init (seed 0); optimizer `train.optim.adamw()`
(lr 1e-4 constant, betas 0.9/0.95, wd 0.1, clip 1.0, as the TRL script binds); loss
`train.train_setup.loss_options()` (z-loss 1e-4; head at the loss positions only). Data: the trainer's
`pipeline.batches(..., pack=True)` best-fit packer, rows of --inputs-len + --targets-len =
2048 (1600 + 448 covers the longest prompt, 1500, and completion + EOS, 401: nothing truncated).
Step: the trainer's own `make_train_step` / `jit_train_step` on one device, --microbatches k
or "auto" (train/microbatch.py, budget --memory-budget-gib or half the host's memory).

Timing, as the peer scripts: --warmup untimed steps (the first compiles), then --steps timed;
a step's time = wall time between the ends of consecutive steps (next batch + host->device +
step + block_until_ready). Printed (stderr summary, stdout one JSON line):
  s/step            median of the timed steps
  target tokens/s   over the epoch: the loss-carrying tokens of every full batch of one epoch /
                    batches / median s/step (the peers' "epoch_effective_target_tokens_per_s")
  peak RSS          getrusage ru_maxrss of this process (GiB)
  model FLOP/s      train.metrics.model_flops_per_step (6 x non-embedding params x tokens +
                    12 x layers x d_model x T^2 per row, PaLM appendix B) / median s/step, and its
                    ratio to the float32 matmul peak measured in this process before and after
                    the steps (the higher of the two)

    PYTHONPATH=. .venv/bin/python bench/sft_e2e.py --data /tmp/sft_data.jsonl \
        [--batch 8] [--microbatches 1|k|auto] [--warmup 2] [--steps 5] [--malloc tuned|default]
        [--attention skip|causal] [--profile DIR] [--emb 512 --layers 8 --limit N  (smoke runs only)]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

GIB = 1024**3


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--inputs-len", type=int, default=1600)
    p.add_argument("--targets-len", type=int, default=448)
    p.add_argument("--microbatches", default="1", help="an int, or 'auto'")
    p.add_argument("--memory-budget-gib", type=float, default=None, help="budget of --microbatches auto")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--malloc", choices=["tuned", "default"], default="tuned")
    p.add_argument("--attention", choices=["skip", "causal"], default="skip",
                   help="skip: segment-aware blocks (the default config); causal: causal_blocks=4 only")
    p.add_argument("--emb", type=int, default=512, help="smoke runs only")
    p.add_argument("--layers", type=int, default=8, help="smoke runs only")
    p.add_argument("--limit", type=int, default=None, help="first N examples only (smoke runs)")
    p.add_argument("--profile", default=None, help="trace one more step into this directory and print "
                   "its op time per part of the model (bench/op_profile.py)")
    return p.parse_args()


ARGS = parse_args()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ARGS.malloc == "tuned":
    from flan_jax import host_malloc  # imports no JAX

    host_malloc.reexec_with_tuned_malloc()  # returns once the variables are set
else:
    os.environ["FLAN_JAX_MALLOC_TUNING"] = "0"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from flan_jax.data.features import pipeline  # noqa: E402
from flan_jax.models import params_io  # noqa: E402
from flan_jax.models.decoder import DecoderConfig  # noqa: E402
from flan_jax.train import microbatch  # noqa: E402
from flan_jax.train.mesh import make_mesh  # noqa: E402
from flan_jax.train.metrics import measure_matmul_peak, model_flops_per_step  # noqa: E402
from flan_jax.train.optim import adamw  # noqa: E402
from flan_jax.train.state import create_state, num_params, state_shardings  # noqa: E402
from flan_jax.train.step import jit_train_step, make_train_step, model_apply_fn  # noqa: E402
from flan_jax.train.train_setup import loss_options  # noqa: E402

EOS = 1


def read_examples(path: str, limit: int | None) -> list[dict[str, np.ndarray]]:
    """JSONL {"prompt_ids", "completion_ids"} -> {"inputs": prompt, "targets": completion + [EOS]}."""
    out = []
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            out.append({"inputs": np.asarray(row["prompt_ids"], np.int32),
                        "targets": np.asarray(list(row["completion_ids"]) + [EOS], np.int32)})
            if limit and len(out) >= limit:
                break
    return out


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # Linux: KiB


def main(args: argparse.Namespace) -> None:
    examples = read_examples(args.data, args.limit)
    lengths = {"inputs": args.inputs_len, "targets": args.targets_len}
    batches = pipeline.batches(examples, "decoder", lengths, batch_size=args.batch, pack=True)
    config = DecoderConfig(vocab_size=32000, emb_dim=args.emb, num_heads=8, num_kv_heads=8, head_dim=args.emb // 8,
                           mlp_dim=1536 * args.emb // 512, num_layers=args.layers, tie_embeddings=False,
                           skip_masked_attention_blocks=args.attention == "skip")
    module, optimizer = params_io.build_model(config), adamw()
    mesh = make_mesh((1, 1, 1), devices=jax.devices()[:1])
    peak_before = measure_matmul_peak()

    first = next(batches)
    one_row = {k: v[:1] for k, v in first.items()}
    abstract, shardings = state_shardings(module, optimizer.tx, one_row, mesh)
    state = create_state(module, optimizer.tx, one_row, abstract, shardings, seed=0)

    def build(k: int):
        return jit_train_step(make_train_step(model_apply_fn(module), optimizer, num_microbatches=k,
                                              loss_kwargs=loss_options(), mesh=mesh), mesh, shardings)

    choice = None
    t0 = time.perf_counter()
    if args.microbatches == "auto":
        budget = microbatch.memory_budget_bytes(args.memory_budget_gib)
        state_in = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
        step, choice = microbatch.auto_train_step(build, state_in, first, mesh, args.batch, budget)
        print(choice.summary(), file=sys.stderr, flush=True)
    else:
        step = build(int(args.microbatches))
    choose_s = time.perf_counter() - t0

    stamps, counts, losses = [time.perf_counter()], [], []
    batch = first
    for i in range(args.warmup + args.steps):
        if i:
            batch = next(batches)
        state, metrics = step(state, {k: jnp.asarray(v) for k, v in batch.items()})
        losses.append(float(jax.block_until_ready(metrics["loss"])))
        stamps.append(time.perf_counter())
        counts.append(int((batch["decoder_loss_weights"] > 0).sum()))
        print(f"step {i}: {stamps[-1] - stamps[-2]:.2f} s, loss {losses[-1]:.4f}, target tokens {counts[-1]}",
              file=sys.stderr, flush=True)
    times = np.diff(stamps)[args.warmup:].tolist()
    rss = peak_rss_gib()
    profile = None
    if args.profile:  # one more step on the last batch, traced per op (bench/op_profile.py)
        from bench import op_profile  # noqa: PLC0415

        profile, top = op_profile.profile(step, state, {k: jnp.asarray(v) for k, v in batch.items()},
                                          out_dir=args.profile)
        print(op_profile.table(profile, top), file=sys.stderr, flush=True)
    # the rest of the epoch, not trained: its target tokens give the epoch average
    epoch_target = sum(counts) + sum(int((b["decoder_loss_weights"] > 0).sum()) for b in batches)
    stats = batches.stats.as_dict()
    peak = max(peak_before, measure_matmul_peak())
    s_step = statistics.median(times)
    flops = model_flops_per_step(abstract.params, config, {k: v.shape for k, v in first.items()})
    res = {
        "bench": "sft_e2e", "framework": "flan_jax", "jax": jax.__version__, "device": str(jax.devices()[0]),
        "malloc": args.malloc, "malloc_env": {k: os.environ[k] for k in
                                              ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
                                              if k in os.environ},
        "config": {"emb_dim": config.emb_dim, "num_layers": config.num_layers, "vocab": config.vocab_size,
                   "attention": args.attention, "attention_block_size": config.attention_block_size},
        "params": num_params(abstract.params), "data": args.data, "examples": len(examples),
        "rows_per_step": args.batch, "row_len": args.inputs_len + args.targets_len,
        "num_microbatches": choice.num_microbatches if choice else int(args.microbatches),
        "predicted_step_peak_gib": choice.peak_bytes / GIB if choice else None, "choose_s": choose_s,
        "epoch_steps": stats["batches"], "row_fill": stats.get("row_fill"),
        "warmup_s": np.diff(stamps)[:args.warmup].tolist(), "step_s": times, "s_per_step_median": s_step,
        "epoch_target_tokens": epoch_target,
        "epoch_target_tokens_per_s": epoch_target / stats["batches"] / s_step,
        "peak_rss_gib": rss, "model_flops_per_step": flops, "model_flops_per_s": flops / s_step,
        "matmul_peak_flops_per_s": peak, "model_flops_over_peak": flops / s_step / peak, "losses": losses,
        "op_profile_s": profile,
    }
    print(f"flan_jax sft_e2e: {s_step:.2f} s/step, {res['epoch_target_tokens_per_s']:.1f} target tokens/s over "
          f"the epoch, peak RSS {rss:.2f} GiB, model {flops / s_step / 1e9:.1f} GFLOP/s = "
          f"{res['model_flops_over_peak']:.2f} of the matmul peak {peak / 1e9:.1f} GFLOP/s "
          f"({res['num_microbatches']} micro-batches)", file=sys.stderr, flush=True)
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main(ARGS)
