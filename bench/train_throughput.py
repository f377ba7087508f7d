"""Steady-state training throughput on CPU for the two fixed configs of PERFORMANCE.md.

    .venv/bin/python bench/train_throughput.py [--config dec-50m|t5-small|both] [--steps 10]
        [--warmup 1] [--batch 8] [--seq 512] [--hf] [--mesh] [--malloc tuned|default]

Prints figures (not a timed test). Our step is the trainer's own: `state_shardings` ->
`create_state` -> `make_train_step` (loss with the default z-loss, full-logits head) -> `jit_train_step`, on one
CPU device (and with --mesh also on 8 fake devices, mesh data=8). Per run: seconds/step (median
of --steps steps after --warmup steps; the first includes compilation), target tokens/s (tokens
with loss weight: all positions for the decoder, the targets for T5), model FLOP/s and its ratio
to an f32 matmul peak measured in the same run (best of 5 jitted 2048^3 matmuls, measured before and
after the runs; the higher is kept).

Model FLOPs per step (PaLM appendix B, `train.metrics.model_flops_per_step`):
6 x non-embedding params x tokens (forward 2, backward 4) + attention 12 x layers x d_model x T^2
per sequence (T5 adds encoder S^2 and cross-attention S x T terms). dec-50m: 1.176 TFLOP/step,
t5-small: 1.010 TFLOP/step at the default shapes.

By default the bench re-executes itself with the glibc malloc settings the CLI uses
(`flan_jax/host_malloc.py`: freed step memory is reused instead of page-faulted in again);
`--malloc default` measures glibc's defaults. Both runs of one invocation share the setting.
With --mesh (8 fake devices) the settings do not apply, as in the CLI (see host_malloc).

--hf runs the same shapes in HF transformers + torch (eager, float32, same optimizer family:
torch AdamW with the same clip; HF's Adafactor with T5's settings) in this invocation and prints
ours/HF as the ratio of throughputs (>1: we are faster).

dec-50m: Llama-style, hidden 512, 8 layers, 8 heads / 8 kv heads, SwiGLU 1536, vocab 32000,
untied; seq 512, batch 8, AdamW.  t5-small: T5 v1.1 shape, 8 heads, d_kv 64, gated-GELU d_ff
1024, 8+8 layers, vocab 32128, untied; inputs 512, targets 128, batch 8, Adafactor.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

from flan_jax import host_malloc


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", choices=["dec-50m", "t5-small", "both"], default="both")
    p.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps after the compiling one")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=512, help="decoder length / T5 input length (targets = seq/4)")
    p.add_argument("--hf", action="store_true", help="also run HF transformers + torch (eager)")
    p.add_argument("--mesh", action="store_true", help="also run on an 8-device fake CPU mesh")
    p.add_argument("--malloc", choices=["tuned", "default"], default="tuned",
                   help="tuned: re-exec with flan_jax.host_malloc's glibc settings, as the CLI does "
                        "(they apply to the HF run too); default: glibc's own")
    return p.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
os.environ.setdefault("JAX_PLATFORMS", "cpu")  # never start libtpu (the tpu extra) for a CPU bench
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if ARGS is not None and ARGS.mesh:  # must precede the jax import
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
if ARGS is not None and ARGS.malloc == "tuned":  # must precede the jax import; not with --mesh
    host_malloc.reexec_with_tuned_malloc()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from flan_jax.models import params_io  # noqa: E402
from flan_jax.models.decoder import DecoderConfig  # noqa: E402
from flan_jax.models.t5 import T5Config  # noqa: E402
from flan_jax.train.mesh import make_mesh  # noqa: E402
from flan_jax.train.metrics import measure_matmul_peak, model_flops_per_step  # noqa: E402
from flan_jax.train.optim import adafactor, adamw  # noqa: E402
from flan_jax.train.state import create_state, num_params, state_shardings  # noqa: E402
from flan_jax.train.step import jit_train_step, make_train_step, model_apply_fn  # noqa: E402
from flan_jax.train.synthetic import synthetic_batch  # noqa: E402
from flan_jax.train.train_setup import loss_options  # noqa: E402

DEC_50M = DecoderConfig(vocab_size=32000, emb_dim=512, num_heads=8, num_kv_heads=8, head_dim=64,
                        mlp_dim=1536, num_layers=8, tie_embeddings=False)
T5_SMALL = T5Config(vocab_size=32128, emb_dim=512, num_heads=8, head_dim=64, mlp_dim=1024,
                    num_encoder_layers=8, num_decoder_layers=8, mlp_activations=("gelu", "linear"),
                    tie_embeddings=False, dropout_rate=0.0)


def make_batch(name: str, batch: int, seq: int) -> dict[str, np.ndarray]:
    """Synthetic rows (one segment each). Decoder: every position is a target (LM loss, as HF's
    labels=input_ids); T5: inputs `seq`, targets seq/4."""
    if name == "dec-50m":
        b = synthetic_batch("decoder", {"inputs": seq // 2, "targets": seq - seq // 2}, batch, 32000, 0)
        b["decoder_loss_weights"] = np.ones_like(b["decoder_loss_weights"])
        return b
    return synthetic_batch("enc_dec", {"inputs": seq, "targets": max(seq // 4, 1)}, batch, 32128, 0)


def timed(step_once, steps: int, warmup: int) -> tuple[float, float]:
    """(first step seconds incl. compile, median of `steps` steps after `warmup` more)."""
    t = time.perf_counter()
    step_once()
    first = time.perf_counter() - t
    for _ in range(warmup):
        step_once()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step_once()
        times.append(time.perf_counter() - t)
    return first, statistics.median(times)


def run_ours(name: str, batch_np: dict, devices: list, steps: int, warmup: int) -> dict:
    config, optimizer = (DEC_50M, adamw()) if name == "dec-50m" else (T5_SMALL, adafactor())
    module = params_io.build_model(config)
    mesh = make_mesh((len(devices), 1, 1), devices=devices)
    example = {k: v[:1] for k, v in batch_np.items()}
    abstract, shardings = state_shardings(module, optimizer.tx, example, mesh)
    state = create_state(module, optimizer.tx, example, abstract, shardings, seed=0)
    # Every position carries loss in these rows (as HF's labels=input_ids), so the full-logits
    # head; bench/head_cost.py measures the loss-positions head on instruction-tuning rows.
    loss_kwargs = dict(loss_options(), head_capacity=None)
    step = jit_train_step(make_train_step(model_apply_fn(module), optimizer, loss_kwargs=loss_kwargs,
                                          mesh=mesh), mesh, shardings)
    batch = {k: jnp.asarray(v) for k, v in batch_np.items()}
    holder = {"state": state}

    def once():
        holder["state"], metrics = step(holder["state"], batch)
        jax.block_until_ready(metrics["loss"])

    first, median = timed(once, steps, warmup)
    shapes = {k: v.shape for k, v in batch_np.items()}
    return {"first": first, "median": median, "params": num_params(abstract.params),
            "flops": model_flops_per_step(abstract.params, config, shapes)}


def run_hf(name: str, batch_np: dict, steps: int, warmup: int) -> dict:
    import torch
    import transformers

    torch.manual_seed(0)
    if name == "dec-50m":
        cfg = transformers.LlamaConfig(vocab_size=32000, hidden_size=512, intermediate_size=1536,
                                       num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=8,
                                       max_position_embeddings=max(512, batch_np["decoder_input_tokens"].shape[1]),
                                       tie_word_embeddings=False, attn_implementation="sdpa")
        model = transformers.LlamaForCausalLM(cfg)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
        ids = torch.from_numpy(batch_np["decoder_target_tokens"].astype(np.int64))
        inputs = {"input_ids": ids, "labels": ids}
        clip = 1.0
    else:
        cfg = transformers.T5Config(vocab_size=32128, d_model=512, d_kv=64, d_ff=1024, num_layers=8,
                                    num_decoder_layers=8, num_heads=8, feed_forward_proj="gated-gelu",
                                    tie_word_embeddings=False, dropout_rate=0.0, decoder_start_token_id=0,
                                    pad_token_id=0, eos_token_id=1)
        model = transformers.T5ForConditionalGeneration(cfg)
        opt = transformers.optimization.Adafactor(model.parameters(), lr=1e-3, scale_parameter=True,
                                                  relative_step=False, warmup_init=False, decay_rate=-0.8,
                                                  clip_threshold=1.0)
        inputs = {"input_ids": torch.from_numpy(batch_np["encoder_input_tokens"].astype(np.int64)),
                  "labels": torch.from_numpy(batch_np["decoder_target_tokens"].astype(np.int64))}
        clip = None
    model.train()

    def once():
        opt.zero_grad(set_to_none=True)
        loss = model(**inputs).loss
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()

    first, median = timed(once, steps, warmup)
    return {"first": first, "median": median, "torch": torch.__version__, "threads": torch.get_num_threads()}


def target_tokens(name: str, batch_np: dict) -> int:
    return int(np.sum(batch_np["decoder_loss_weights"] > 0))


def release_memory() -> None:
    """Between runs: drop the finished run's buffers and compiled programs, and hand the freed
    heap back to the kernel (the tuned malloc keeps it otherwise, and four models' heaps do not
    fit in 24 GiB)."""
    jax.clear_caches()
    gc.collect()
    host_malloc.release_free_memory()


def main(args: argparse.Namespace) -> int:
    names = ["dec-50m", "t5-small"] if args.config == "both" else [args.config]
    peak_start = measure_matmul_peak(n=2048)
    malloc = {k: os.environ[k] for k in ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
              if k in os.environ}
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs; malloc: {args.malloc} {malloc or '(glibc defaults)'}")
    print(f"steps: median of {args.steps} after 1 compiling + {args.warmup} warm-up; batch {args.batch}, seq {args.seq}")
    rows = []  # (config, run label, params or None, result, FLOPs, tokens, HF median or None)
    for name in names:
        batch_np = make_batch(name, args.batch, args.seq)
        tokens = target_tokens(name, batch_np)
        runs = [("flan_jax, 1 device", [jax.devices()[0]])]
        if args.mesh and args.batch % jax.device_count():
            print(f"(--mesh skipped: batch {args.batch} does not split over {jax.device_count()} devices)")
        elif args.mesh:
            runs.append((f"flan_jax, {jax.device_count()}-device mesh", jax.devices()))
        results = []
        for label, devices in runs:
            results.append((label, run_ours(name, batch_np, devices, args.steps, args.warmup)))
            release_memory()
        hf = run_hf(name, batch_np, args.steps, args.warmup) if args.hf else None
        release_memory()
        flops = results[0][1]["flops"]
        for label, r in results:
            rows.append((name, label, r["params"], r, flops, tokens, hf["median"] if hf else None))
        if hf:
            label = f"HF transformers + torch {hf['torch']} eager ({hf['threads']} threads)"
            rows.append((name, label, None, hf, flops, tokens, hf["median"]))
        print(f"({name} done)", flush=True)
    # The peak is measured before and after the runs and the higher one kept: a shared machine
    # that was busy during one measurement would otherwise inflate every "/ peak" ratio.
    peak_end = measure_matmul_peak(n=2048)
    peak = max(peak_start, peak_end)
    print(f"f32 matmul peak {peak / 1e9:.1f} GFLOP/s (best of 5 jitted 2048^3 matmuls; "
          f"{peak_start / 1e9:.1f} before the runs, {peak_end / 1e9:.1f} after)")
    header = "| config | run | params | s/step | first step s | target tok/s | model GFLOP/s | / peak | ours / HF |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, label, params, r, flops, tokens, hf_median in rows:
        ratio = f"{hf_median / r['median']:.2f}" if hf_median else "-"
        size = f"{params / 1e6:.1f}M" if params else "-"
        print(f"| {name} | {label} | {size} | {r['median']:.2f} | {r['first']:.1f} | {tokens / r['median']:.0f} | "
              f"{flops / r['median'] / 1e9:.1f} | {flops / r['median'] / peak:.2f} | {ratio} |")
    flops_by_config = {name: flops for name, _, _, _, flops, _, _ in rows}
    print("model FLOPs/step: " + ", ".join(f"{n} {f / 1e12:.3f} TFLOP" for n, f in flops_by_config.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
