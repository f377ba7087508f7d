"""flan_jax's Gemma 3 270M tuning step beside TRL's and Tunix's on the same pre-packed rows.

    # rows of 512 tokens in the peers' format (rows of 128: ../shared/peers/gemma_make_rows.py)
    .venv/bin/python bench/peers.py --make-rows 512 --out rows_512.jsonl
    # our step on both row lengths; the peers' figures read from their JSON, with the ratios
    .venv/bin/python bench/peers.py --rows 128=gemma_rows.jsonl --rows 512=rows_512.jsonl \
        --peer trl:128=trl_128.json --peer tunix:128=tunix_128.json --peer trl:512=trl_512.json

The peers' scripts (`../shared/peers/gemma_trl.py`, `gemma_tunix.py`; their own venvs) each print
one JSON line; docs/benchmarks.md ("Peers on the same rows") has the commands that made them.
This bench runs only flan_jax, in this process: the trainer's own step (`make_train_step`,
`jit_train_step`) of the main job (gin_configs/experiments/main_job.gin: AdamW b1 0.9, b2 0.95,
clip 1.0, z-loss 1e-4, the head at the loss positions with capacity 0.1), the learning rate
bound to a constant 3e-5 (the peers' setting; no effect on speed), on the cached Gemma 3 270M
base, float32, one CPU device, one step at a time, glibc's tuned malloc (host_malloc, the
main job's setting since 2026-12-08; the bench re-executes itself with it). Step i takes rows
8i .. 8i+7; each example becomes inputs = prompt, targets = completion + [EOS 1], packed as in
the peers' rows (`features.assemble_rows`, BOS 2).

Per row length it prints s/step (median of --steps after --warmup), target tokens/s,
positions/s, model FLOPs per step and their rate against the float32 matmul peak measured in this
process (`train.metrics.measure_matmul_peak`, 2048^3, before and after the runs, the higher kept),
then each peer's s/step, target tokens/s and ours / theirs (target tokens/s: > 1 means flan_jax is
faster). A peer whose rows differ (its targets per step) is compared in target tokens/s all the same.

Model FLOPs per step (PaLM appendix B, as `train.metrics.model_flops_per_step`): 6 x non-embedding
parameters x positions + the tied head at the loss positions only, 6 x V x D per target token,
+ attention 12 x layers x (heads x head_dim) x positions x row length. Gemma 3 270M, 8 x 128
with 96 targets: 0.616 + 0.097 + 0.029 = 0.74 TFLOP.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import sys
import time

from flan_jax import host_malloc

EOS, BOS = 1, 2
ROWS_PER_STEP = 8


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", action="append", default=[], metavar="LEN=PATH",
                   help="pre-packed rows of LEN tokens (the peers' JSONL format)")
    p.add_argument("--peer", action="append", default=[], metavar="NAME:LEN=PATH",
                   help="a peer's JSON result for rows of LEN")
    p.add_argument("--base", default=None, help="flan_jax checkpoint dir (default: the main job's converted base)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="compute dtype")
    p.add_argument("--make-rows", type=int, default=None, metavar="LEN", help="write rows of LEN and exit")
    p.add_argument("--num-rows", type=int, default=160)
    p.add_argument("--out", default=None, help="with --make-rows: the JSONL file")
    p.add_argument("--json", default=None, help="also write our figures to this JSON file")
    p.add_argument("--profile", default=None, metavar="DIR",
                   help="after the timed steps, a per-op profile of one more step (bench/op_profile.py)")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- rows


def _composition(rng, total: int, k: int, lo: int, hi: int) -> list[int]:
    """k ints in [lo, hi] summing to `total` (rejection sampling)."""
    while True:
        x = rng.integers(lo, hi + 1, size=k - 1)
        last = total - int(x.sum())
        if lo <= last <= hi:
            return [int(v) for v in x] + [last]


# examples per row -> (target range per example, prompt range per example) for rows of 512:
# prompts of 80-300 tokens (RTE ~80, HellaSwag ~100, BoolQ passages 150-250), 12 targets a row.
_LAYOUT_512 = {2: ((4, 8), (200, 298)), 3: ((2, 8), (120, 210)), 4: ((2, 4), (80, 160))}


def make_rows(length: int, num_rows: int, seed: int = 0) -> list[dict]:
    """Rows in the peers' format: {"examples": [{"prompt_ids", "completion_ids"}, ...]}, each row
    exactly `length` tokens in the HF layout ([BOS] + prompt + completion + [EOS] per example) with
    exactly 12 target tokens (completion + EOS), ids drawn from [1000, 200000). Rows of 512 hold
    2, 3 or 4 examples in turn (`_LAYOUT_512`); other lengths scale those prompt ranges."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for r in range(num_rows):
        k = 2 + r % 3
        (t_lo, t_hi), (p_lo, p_hi) = _LAYOUT_512[k]
        scale = length / 512
        targets = _composition(rng, 12, k, t_lo, t_hi)
        prompts = _composition(rng, length - k - 12, k, int(p_lo * scale), int(p_hi * scale))
        rows.append({"examples": [
            {"prompt_ids": rng.integers(1000, 200000, size=p).tolist(),
             "completion_ids": rng.integers(1000, 200000, size=t - 1).tolist()}
            for p, t in zip(prompts, targets)]})
    return rows


def read_batches(path: str, length: int, steps: int) -> list[dict]:
    """The first 8 x `steps` rows of `path` as flan_jax batches of [8, length] (decoder format)."""
    import numpy as np

    from flan_jax.data.features import converters

    lengths = {"inputs": length - 32, "targets": 32}
    rows = []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            segments = []
            for ex in json.loads(line)["examples"]:
                example = {"inputs": np.asarray(ex["prompt_ids"], np.int32),
                           "targets": np.asarray(list(ex["completion_ids"]) + [EOS], np.int32)}
                segment, outcome = converters.example_to_segment(example, "decoder", lengths)
                if outcome != "ok":
                    raise SystemExit(f"{path}:{line_no}: example {outcome} at rows of {length}")
                segments.append(segment)
            rows.append(segments)
            if len(rows) == ROWS_PER_STEP * steps:
                break
    if len(rows) < ROWS_PER_STEP * steps:
        raise SystemExit(f"{path}: {len(rows)} rows, {ROWS_PER_STEP * steps} needed")
    return [converters.assemble_rows(rows[i:i + ROWS_PER_STEP], "decoder", lengths, packed=True, bos_id=BOS)
            for i in range(0, len(rows), ROWS_PER_STEP)]


# ----------------------------------------------------------------------------- our step


def model_flops(config, params, batch_shape: tuple[int, int], targets: int) -> float:
    """Model FLOPs of one training step (module docstring)."""
    import numpy as np

    import jax

    rows, length = batch_shape
    total = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    embedding = config.vocab_size * config.emb_dim
    attention_width = config.num_heads * config.head_dim
    return (6.0 * (total - embedding) * rows * length + 6.0 * embedding * targets
            + 12.0 * config.num_layers * attention_width * rows * length * length)


def run_ours(base: str, batches: list[dict], warmup: int, dtype: str, profile_dir: str | None = None) -> dict:
    """Our step on `batches` from the base checkpoint: timings, counts, losses."""
    import jax
    import jax.numpy as jnp

    from flan_jax.experiments.main_job import EXPERIMENT
    from flan_jax.models import params_io
    from flan_jax.train.gin_config import parse_gin
    from flan_jax.train.mesh import make_mesh
    from flan_jax.train.optim import adamw
    from flan_jax.train.state import create_state, state_shardings
    from flan_jax.train.step import jit_train_step, make_train_step, model_apply_fn
    from flan_jax.train.train_setup import loss_options

    parse_gin([EXPERIMENT], ["lr_schedule.kind='constant'", "lr_schedule.peak=3e-5", "lr_schedule.warmup_steps=0"])
    config, params = params_io.load_checkpoint(base)
    config = dataclasses.replace(config, dtype=dtype)  # compute dtype; parameters stay float32
    module = params_io.build_model(config)
    optimizer = adamw()
    mesh = make_mesh((1, 1, 1), devices=jax.devices()[:1])
    one_row = {k: v[:1] for k, v in batches[0].items()}
    abstract, shardings = state_shardings(module, optimizer.tx, one_row, mesh)
    state = create_state(module, optimizer.tx, one_row, abstract, shardings, seed=0, params=params)
    flops = model_flops(config, params, batches[0]["decoder_input_tokens"].shape,
                        int((batches[0]["decoder_loss_weights"] > 0).sum()))
    del params
    step = jit_train_step(make_train_step(model_apply_fn(module), optimizer, loss_kwargs=loss_options(),
                                          mesh=mesh, dropout_seed=0), mesh, shardings)
    stamps, losses = [time.perf_counter()], []
    for i, batch in enumerate(batches):
        state, metrics = step(state, {k: jnp.asarray(v) for k, v in batch.items()})
        losses.append(float(jax.block_until_ready(metrics["loss"])))
        stamps.append(time.perf_counter())
        print(f"  step {i}: {stamps[-1] - stamps[-2]:.2f} s, loss {losses[-1]:.4f}", file=sys.stderr, flush=True)
    if profile_dir:  # one more step of the last batch, traced (bench/op_profile.py)
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import op_profile

        rows, top = op_profile.profile(step, state, {k: jnp.asarray(v) for k, v in batches[-1].items()},
                                       out_dir=profile_dir)
        print(op_profile.table(rows, top), file=sys.stderr, flush=True)
    times = [b - a for a, b in zip(stamps, stamps[1:])][warmup:]
    targets = sum(int((b["decoder_loss_weights"] > 0).sum()) for b in batches[warmup:])
    positions = sum(int(b["decoder_input_tokens"].size) for b in batches[warmup:])
    return {"framework": "flan_jax", "dtype": dtype, "step_s": times,
            "s_per_step_median": statistics.median(times),
            "target_tokens_per_step": targets / len(times), "positions_per_step": positions / len(times),
            "target_tokens_per_s": targets / sum(times), "positions_per_s": positions / sum(times),
            "model_flops_per_step": flops, "losses": losses}


# ----------------------------------------------------------------------------- report


def parse_keyed(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, path = value.partition("=")
        if not sep or not path:
            raise SystemExit(f"{what} {value!r}: expected KEY=PATH")
        out[key] = path
    return out


def read_peer(key: str, path: str) -> dict:
    """A peer's one-line JSON; a missing file or field is one clear line and exit status 2."""
    try:
        with open(path) as f:
            res = json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError) as e:
        print(f"bench/peers.py: --peer {key}={path}: {e}", file=sys.stderr)
        raise SystemExit(2) from e
    for field in ("s_per_step_median", "target_tokens_per_s"):
        if field not in res:
            print(f"bench/peers.py: --peer {key}={path}: no field {field!r}", file=sys.stderr)
            raise SystemExit(2)
    return res


def report(ours: dict[int, dict], peers: dict[str, dict], peak: float) -> list[str]:
    """The table's lines: ours per row length, then each peer with ours / theirs."""
    lines = [f"float32 matmul peak in this process: {peak / 1e9:.1f} GFLOP/s", "",
             "| framework | rows | s/step (median) | target tok/s | positions/s | peak RSS GiB | "
             "model GFLOP/s | / matmul peak | flan_jax / this |",
             "|---|---|---|---|---|---|---|---|---|"]
    for length, res in sorted(ours.items()):
        rate = res["model_flops_per_step"] / res["s_per_step_median"]
        lines.append(f"| flan_jax | 8 x {length} | {res['s_per_step_median']:.2f} | {res['target_tokens_per_s']:.1f} | "
                     f"{res['positions_per_s']:.0f} | {res['peak_rss_gib']:.1f} | {rate / 1e9:.0f} | "
                     f"{rate / peak:.2f} | - |")
    for key, res in sorted(peers.items()):
        name, _, length = key.partition(":")
        mine = ours.get(int(length)) if length.isdigit() else None
        ratio = f"{mine['target_tokens_per_s'] / res['target_tokens_per_s']:.2f}x" if mine else "(not run)"
        rss = res.get("peak_rss_gib")
        lines.append(f"| {name} | 8 x {length} | {res['s_per_step_median']:.2f} | {res['target_tokens_per_s']:.1f} | "
                     f"{res.get('positions_per_s', float('nan')):.0f} | {rss if rss is None else f'{rss:.1f}'} | "
                     f"- | - | {ratio} |")
    return lines


def main(args: argparse.Namespace) -> int:
    if args.make_rows:
        if not args.out:
            print("bench/peers.py: --make-rows needs --out", file=sys.stderr)
            return 2
        with open(args.out, "w") as f:
            for row in make_rows(args.make_rows, args.num_rows):
                f.write(json.dumps(row) + "\n")
        print(f"{args.num_rows} rows of {args.make_rows} -> {args.out}")
        return 0
    rows = {int(k): v for k, v in parse_keyed(args.rows, "--rows").items()}
    peers = {k: read_peer(k, v) for k, v in parse_keyed(args.peer, "--peer").items()}

    from flan_jax.experiments.main_job import base_checkpoint
    from flan_jax.train.metrics import measure_matmul_peak

    base = args.base or str(base_checkpoint("gguf:gemma-3-270m")[0])
    peak = measure_matmul_peak(2048)
    ours = {}
    for length, path in sorted(rows.items()):
        print(f"flan_jax, rows of {length} ({path}):", file=sys.stderr, flush=True)
        res = run_ours(base, read_batches(path, length, args.warmup + args.steps), args.warmup, args.dtype,
                       os.path.join(args.profile, str(length)) if args.profile else None)
        res["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        ours[length] = res
        host_malloc.release_free_memory()  # the tuned heap keeps this length's blocks otherwise
    peak = max(peak, measure_matmul_peak(2048))
    print("\n".join(report(ours, peers, peak)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"matmul_peak_flops": peak, "ours": ours, "peers": peers}, f)
    return 0


if __name__ == "__main__":
    ARGS = parse_args()
    if not ARGS.make_rows:  # the main job's malloc setting, before jax is imported
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        host_malloc.reexec_with_tuned_malloc()
    sys.exit(main(ARGS))
