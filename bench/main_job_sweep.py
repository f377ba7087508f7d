"""The sweep that chose the main job's learning rate and step count, on the validation split.

Each configuration is one `flan-jax main` run (its own process) with the evaluation on flan-nl's
*validation* split and no control; the report on the *test* split (`make run`) then uses the
configuration chosen by a rule fixed before the runs: the fewest steps (then the lowest rate)
whose held-out accuracy after tuning lies inside the best configuration's 95% interval. The
held-out cluster itself was chosen earlier from the base model's validation figures
(docs/flan_nl.md). `--lora` tunes LoRA adapters instead (rank 16, alpha 32, every attention and
MLP projection; the same steps and schedule); the rule, fixed before those runs: LoRA replaces
full fine-tuning in the main job when its best held-out accuracy lies inside the interval of
full fine-tuning's chosen configuration (it is the cheaper step). Needs the `.[gemma]` extra.
Prints one row per configuration:

    python bench/main_job_sweep.py --out /tmp/sweep [--lr 1e-5 3e-5 1e-4] [--steps 60] [--lora]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


LORA = ["--gin.train.lora=@LoraConfig()", "--gin.LoraConfig.rank=16", "--gin.LoraConfig.alpha=32.0",
        "--gin.LoraConfig.targets=('heads', 'kv_heads', 'mlp')"]


def bindings(lr: float, steps: int, held_in: int, lora: bool = False) -> list[str]:
    warmup = max(1, steps // 10)
    return (LORA if lora else []) + [
            f"--gin.lr_schedule.peak={lr}", f"--gin.train.num_steps={steps}", f"--gin.train.checkpoint_every={steps}",
            f"--gin.lr_schedule.warmup_steps={warmup}", f"--gin.lr_schedule.decay_steps={steps - warmup}",
            f"--gin.lr_schedule.end_value={lr / 10}", "--gin.main_job_options.eval_split='validation'",
            "--gin.main_job_options.control=False", f"--gin.main_job_options.held_in_examples_per_task={held_in}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-5, 3e-5, 1e-4])
    parser.add_argument("--steps", type=int, nargs="+", default=[60])
    parser.add_argument("--held_in", type=int, default=10, help="validation examples per held-in dataset")
    parser.add_argument("--lora", action="store_true", help="LoRA adapters instead of full fine-tuning")
    args = parser.parse_args()
    print("| peak LR | steps | held-out before | held-out after | held-in after (mean) | last loss | minutes |")
    print("|---|---|---|---|---|---|---|")
    for steps in args.steps:
        for lr in args.lr:
            out = Path(args.out) / f"{'lora_' if args.lora else ''}lr{lr:g}_steps{steps}"
            if not (out / "summary.json").is_file():
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "flan_jax.cli", "main", "--out", str(out),
                                *bindings(lr, steps, args.held_in, args.lora)],
                               check=True, stdout=subprocess.DEVNULL)
                print(f"  ({(time.perf_counter() - started) / 60:.1f} min)", file=sys.stderr)
            s = json.loads((out / "summary.json").read_text())
            held = next(r for r in s["clusters"].values() if r["held_out"])
            trained = [r["after"] for r in s["clusters"].values() if r.get("trained_on")]
            print(f"| {'LoRA ' if args.lora else ''}{lr:g} | {steps} | {held['before']:.1f} | {held['after']:.1f} "
                  f"[{held['after_ci95'][0]:.1f}, {held['after_ci95'][1]:.1f}] | "
                  f"{sum(trained) / len(trained):.1f} | {s['losses'][-1]:.3f} | {s['minutes']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
