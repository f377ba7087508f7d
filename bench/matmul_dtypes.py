"""float32 against bfloat16 matmuls on this machine's XLA backend, at the Gemma 3 270M step's shapes.

    .venv/bin/python bench/matmul_dtypes.py
    .venv/bin/python bench/matmul_dtypes.py --xla-flags= --xla-flags=--xla_cpu_use_onednn=true

Per shape (M x K times K x N, a jitted `a @ b` on ones), the best of --repeats timed calls in
float32 and in bfloat16, interleaved, in one process: GFLOP/s (2 M K N per call) and the ratio
bf16 / f32 (> 1: bfloat16 is faster). With --xla-flags=VALUE (repeatable; the `=` form, since
the values start with dashes) each value of XLA_FLAGS runs the same in a fresh process (the
flags are read when jax starts), so backends' options can be compared.

Shapes: 2048^3 (the peak benches use), the MLP's up and down projections and a kernel gradient
of 8 x 128 positions (D 640, F 2048), and the tied head at 104 loss positions (V 262,144).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SHAPES = {
    "2048^3": (2048, 2048, 2048),
    "mlp up [1024,640]x[640,2048]": (1024, 640, 2048),
    "mlp down [1024,2048]x[2048,640]": (1024, 2048, 640),
    "kernel grad [640,1024]x[1024,2048]": (640, 1024, 2048),
    "head [104,640]x[640,262144]": (104, 640, 262144),
}


def rates(repeats: int) -> dict[str, dict[str, float]]:
    """{shape: {"float32": FLOP/s, "bfloat16": FLOP/s}} measured in this process."""
    import jax
    import jax.numpy as jnp

    out: dict[str, dict[str, float]] = {}
    f = jax.jit(lambda a, b: a @ b)
    for name, (m, k, n) in SHAPES.items():
        args = {dt: (jnp.ones((m, k), dt), jnp.ones((k, n), dt)) for dt in ("float32", "bfloat16")}
        best = {dt: float("inf") for dt in args}
        for dt in args:
            f(*args[dt]).block_until_ready()  # compile
        for _ in range(repeats):
            for dt in args:  # interleaved
                t = time.perf_counter()
                f(*args[dt]).block_until_ready()
                best[dt] = min(best[dt], time.perf_counter() - t)
        out[name] = {dt: 2.0 * m * k * n / s for dt, s in best.items()}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--xla-flags", action="append", default=None, metavar="VALUE",
                   help="one fresh process per value of XLA_FLAGS (repeat; write --xla-flags=VALUE)")
    p.add_argument("--json", action="store_true", help="print one JSON line (used by --xla-flags)")
    args = p.parse_args(argv)
    if args.xla_flags is None:
        results = {os.environ.get("XLA_FLAGS", ""): rates(args.repeats)}
    else:
        results = {}
        for flags in args.xla_flags:
            env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--json", "--repeats", str(args.repeats)],
                                 env=env, stdout=subprocess.PIPE, text=True, check=True)
            results[flags] = json.loads(out.stdout.strip().splitlines()[-1])[flags]
    if args.json:
        print(json.dumps(results))
        return 0
    for flags, by_shape in results.items():
        print(f"XLA_FLAGS={flags!r}")
        print("| shape | float32 GFLOP/s | bfloat16 GFLOP/s | bf16 / f32 |\n|---|---|---|---|")
        for name, r in by_shape.items():
            print(f"| {name} | {r['float32'] / 1e9:.1f} | {r['bfloat16'] / 1e9:.1f} | "
                  f"{r['bfloat16'] / r['float32']:.2f} |")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    sys.exit(main())
