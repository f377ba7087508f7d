"""GPU check: train-step and evaluation throughput on one NVIDIA GPU, losses checked against the CPU.

    python bench/gpu_check.py                  # on a machine with an NVIDIA GPU and jax[cuda]
    python bench/gpu_check.py --smoke          # tiny sizes on the CPU (the test suite runs this)
    python bench/gpu_check.py --out gpu.json   # also write the figures as JSON

Needs jax (with its CUDA plugin for the GPU), flax, optax and numpy; it imports only the TF-free
core of flan_jax (models, train.step/loss/optim/state/mesh, eval.rank_classification), never
TensorFlow or seqio, so it runs where those are not installed (tests/bench/test_gpu_check.py
checks this with both blocked).

For each model ("dec-50m": bench/sft_e2e.py's Llama-shaped decoder, 8 rows x 2048; Gemma 3 270M,
gin_configs/models/gemma3_270m.gin with random weights, 8 rows x 512) and compute dtype
(float32, bfloat16): the trainer's own step (`state_shardings` -> `create_state` ->
`make_train_step` with AdamW and `loss_options()` -> `jit_train_step`) on one fixed synthetic
batch (`train.synthetic`, seed 0), the median step time, tokens/s (all positions), model FLOP/s
(`train.metrics.model_flops_per_step`) and MFU against the card's dense bfloat16 peak. The first
step's loss (the batch at the initial parameters) is checked against the same step run on the
host CPU in float32 (recomputed here, same seed): within 2e-3 relative in float32 (the GPU may
use TF32 products) and 2e-2 in bfloat16. Then rank classification (`eval.packed_scoring` and the
earlier `eval.prompt_sharing` path) of random flan-nl-length examples: examples/s and
compilations. It exits 1 when a loss is off.

Peaks (dense bfloat16, no sparsity) from NVIDIA's datasheets: H100 SXM 989 TFLOP/s, H100 NVL 835,
H100 PCIe 756 (H100 Tensor Core GPU datasheet); H200 SXM/NVL 989 (H200 datasheet); A100 312
(A100 datasheet); L4 121 (L4 datasheet). Another card prints no MFU.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

PEAK_BF16 = (  # (substrings of jax's device_kind, dense bf16 FLOP/s); the first match wins
    (("H100", "PCIe"), 756e12), (("H100", "NVL"), 835e12), (("H100",), 989e12), (("H200",), 989e12),
    (("A100",), 312e12), (("L4",), 121e12),
)
TOLERANCE = {"float32": 2e-3, "bfloat16": 2e-2}  # relative, first-step loss vs the CPU's float32


def card_peak(kind: str) -> float | None:
    """Dense bf16 FLOP/s of a device kind, e.g. "NVIDIA H100 80GB HBM3" -> 989e12; None if unknown."""
    for keys, peak in PEAK_BF16:
        if all(k.lower() in kind.lower() for k in keys):
            return peak
    return None


def configs(smoke: bool) -> dict:
    from flan_jax.models.decoder import DecoderConfig
    from flan_jax.models.gemma import Gemma3Config

    if smoke:
        return {"dec-50m": (DecoderConfig(vocab_size=256, emb_dim=32, num_heads=2, num_kv_heads=2, head_dim=16,
                                          mlp_dim=64, num_layers=1), 2, 32),
                "gemma3-270m": (Gemma3Config(vocab_size=512, emb_dim=32, num_heads=2, num_kv_heads=1, head_dim=16,
                                             mlp_dim=64, num_layers=2, query_pre_attn_scalar=16.0,
                                             sliding_window=8, sliding_window_pattern=2), 2, 32)}
    return {"dec-50m": (DecoderConfig(vocab_size=32000, emb_dim=512, num_heads=8, num_kv_heads=8, head_dim=64,
                                      mlp_dim=1536, num_layers=8, tie_embeddings=False), 8, 2048),
            "gemma3-270m": (Gemma3Config(), 8, 512)}


def first_loss_and_step(config, rows: int, length: int, device, steps: int) -> dict:
    """The trainer's step on `device`: first-step loss, median step seconds, FLOPs per step."""
    from flan_jax.models import params_io
    from flan_jax.train.mesh import make_mesh
    from flan_jax.train.metrics import model_flops_per_step
    from flan_jax.train.optim import adamw
    from flan_jax.train.state import create_state, state_shardings
    from flan_jax.train.step import jit_train_step, make_train_step, model_apply_fn
    from flan_jax.train.synthetic import synthetic_batch
    from flan_jax.train.train_setup import loss_options

    module, optimizer = params_io.build_model(config), adamw()
    mesh = make_mesh((1, 1, 1), devices=[device])
    batch_np = synthetic_batch("decoder", {"inputs": length // 2, "targets": length - length // 2}, rows,
                               config.vocab_size, 0)
    example = {k: v[:1] for k, v in batch_np.items()}
    abstract, shardings = state_shardings(module, optimizer.tx, example, mesh)
    state = create_state(module, optimizer.tx, example, abstract, shardings, seed=0)
    step = jit_train_step(make_train_step(model_apply_fn(module), optimizer, loss_kwargs=loss_options(), mesh=mesh),
                          mesh, shardings)
    batch = jax.device_put({k: jnp.asarray(v) for k, v in batch_np.items()}, device)
    state, metrics = step(state, batch)
    loss = float(metrics["loss"])
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        state, metrics = step(state, batch)
        jax.block_until_ready(metrics["loss"])
        times.append(time.perf_counter() - t)
    shapes = {k: v.shape for k, v in batch_np.items()}
    return {"loss": loss, "seconds": statistics.median(times) if times else float("nan"),
            "flops": model_flops_per_step(abstract.params, config, shapes), "tokens": rows * length}


def eval_rate(config, device, examples: int) -> dict:
    """Rank classification examples/s of both paths (same examples, same scores) on `device`."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import eval_throughput as et

    from flan_jax.eval import compilations
    from flan_jax.eval.rank_classification import rank_classify
    from flan_jax.models import params_io
    from flan_jax.models.decoder import dummy_batch

    model = params_io.build_model(config)
    with jax.default_device(device):
        params = jax.jit(lambda: model.init(jax.random.PRNGKey(0), dummy_batch(1, 8))["params"])()
        import flax.linen as nn

        params = nn.meta.unbox(params)
        vocab = et.WordVocab(config.vocab_size)
        exs = et.make_examples("flan-nl", examples, config.vocab_size)
        lengths = {"inputs": 64, "targets": 8}
        out = {}
        for method in ("shared", "packed"):
            got = None
            for phase in ("first", "warm"):
                t = time.perf_counter()
                with compilations.counted() as compiles:
                    got = rank_classify(model, params, exs, vocabulary=vocab, lengths=lengths, method=method)
                out[f"{method}_{phase}_examples_per_s"] = examples / (time.perf_counter() - t)
                out[f"{method}_{phase}_compilations"] = len(compiles)
            out[f"{method}_log_likelihoods"] = np.concatenate(got.log_likelihoods)
    diff = float(np.max(np.abs(out.pop("shared_log_likelihoods") - out.pop("packed_log_likelihoods"))))
    out["largest_difference"] = diff
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (a check of the script)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 5, smoke 1)")
    ap.add_argument("--eval-examples", type=int, default=None, help="default 256 (smoke 6)")
    ap.add_argument("--out", default=None, help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    steps = args.steps if args.steps is not None else (1 if args.smoke else 5)
    cpu = jax.devices("cpu")[0]
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    device = cpu if args.smoke or not gpus else gpus[0]
    if not args.smoke and not gpus:
        print("no GPU found (jax.devices(): " + ", ".join(d.platform for d in jax.devices()) + "); try --smoke")
        return 2
    kind = getattr(device, "device_kind", device.platform)
    peak = card_peak(kind) if device.platform == "gpu" else None
    print(f"jax {jax.__version__}, device {kind}, dense bf16 peak "
          f"{'unknown' if peak is None else f'{peak / 1e12:.0f} TFLOP/s'}")
    rows, failed = [], False
    for name, (config, batch, length) in configs(args.smoke).items():
        reference = None  # the first-step loss on the host CPU in float32
        if device != cpu:
            reference = first_loss_and_step(config, batch, length, cpu, 0)["loss"]
        for dtype in ("float32", "bfloat16"):
            got = first_loss_and_step(dataclasses.replace(config, dtype=dtype), batch, length, device, steps)
            if reference is None:  # running on the CPU: its float32 run is the reference
                reference = got["loss"]
            rel = abs(got["loss"] - reference) / abs(reference)
            ok = rel <= TOLERANCE[dtype]
            failed |= not ok
            rate = got["flops"] / got["seconds"]
            row = {"model": name, "dtype": dtype, "rows": batch, "length": length, "step_s": got["seconds"],
                   "tokens_per_s": got["tokens"] / got["seconds"], "tflop_per_s": rate / 1e12,
                   "mfu_bf16_peak": None if peak is None else rate / peak, "loss": got["loss"],
                   "cpu_loss": reference, "loss_rel_diff": rel, "loss_ok": ok}
            rows.append(row)
            mfu = "-" if peak is None else f"{rate / peak:.3f}"
            print(f"{name:12s} {dtype:8s} {row['step_s']:8.4f} s/step {row['tokens_per_s']:10.0f} tokens/s "
                  f"{row['tflop_per_s']:7.2f} TFLOP/s MFU {mfu}  loss {got['loss']:.5f} vs CPU {reference:.5f} "
                  f"({'ok' if ok else 'OFF'})", flush=True)
    gemma = configs(args.smoke)["gemma3-270m"][0]
    evaluation = eval_rate(dataclasses.replace(gemma, dtype="float32"), device,
                           args.eval_examples or (6 if args.smoke else 256))
    print("rank classification (gemma3-270m, float32): " + ", ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in evaluation.items()), flush=True)
    failed |= evaluation["largest_difference"] > 1e-3
    if args.out:
        Path(args.out).write_text(json.dumps({"device": kind, "jax": jax.__version__, "peak_bf16": peak,
                                              "train": rows, "eval": evaluation}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
