"""The main job (`make run`, `flan-jax main`): FLAN's experiment in miniature, on CPU, offline.

1. config: `gin_configs/experiments/main_job.gin` (a small Llama-style decoder, AdamW, the
   flan-mini mixture with one cluster held out); `--gin.KEY=VALUE` overrides it.
2. before: evaluate the freshly initialised model zero-shot on every flan-mini task (held-in
   clusters and the held-out one), one fixed template per task, on the validation split.
3. tune: `train()` on `flan_mini_heldout_no_<held-out cluster>` with checkpoints and TensorBoard.
4. after: the same evaluation on the tuned parameters.
5. write the run folder: train/ (checkpoints/, tensorboard/), eval_before/ and eval_after/ (JSON,
   Markdown, bar chart), loss.png, mixture.png, clusters_before_after.png, summary.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import gin

from flan_jax.errors import FlanJaxError

EXPERIMENT = "experiments/main_job.gin"
log = logging.getLogger("flan_jax.main")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="run folder (default runs/main-<time>)")
    parser.add_argument("--gin_file", action="append", default=None,
                        help=f"gin files (default {EXPERIMENT})")
    parser.add_argument("--max_eval_examples", type=int, default=None,
                        help="examples per task in each evaluation (default: main_job_options)")
    from flan_jax.train.train_cmd import accept_gin_flags

    accept_gin_flags(parser)


def _plot_losses(losses: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(losses) + 1), losses, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (per target token)")
    ax.set_title("instruction tuning on flan-mini")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_before_after(before: dict, after: dict, held_out: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    clusters = sorted(after["clusters"])
    x = np.arange(len(clusters))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(x - 0.2, [before["clusters"][c]["score"] for c in clusters], 0.4, label="before")
    ax.bar(x + 0.2, [after["clusters"][c]["score"] for c in clusters], 0.4, label="after")
    ax.set_xticks(x, [c.replace("mini_", "") + (" (held out)" if c == held_out else "")
                      for c in clusters], rotation=30, ha="right")
    ax.set_ylabel("score (accuracy / exact match, %)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary_table(before: dict, after: dict, held_out: str) -> str:
    """Markdown: per cluster, score before and after tuning, the held-out cluster marked."""
    lines = ["| cluster | before | after | change |", "|---|---:|---:|---:|"]
    for cluster in sorted(after["clusters"]):
        b, a = before["clusters"][cluster]["score"], after["clusters"][cluster]["score"]
        name = f"**{cluster} (held out)**" if cluster == held_out else cluster
        lines.append(f"| {name} | {b:.1f} | {a:.1f} | {a - b:+.1f} |")
    return "\n".join(lines)


def run_main_job(out: str | None = None, gin_files: list[str] | None = None,
                 gin_bindings: list[str] | None = None,
                 max_eval_examples: int | None = None) -> dict[str, Any]:
    """Run the whole job; returns {"run_dir", "before", "after", "losses"}."""
    from flan_jax.data import flan_mini, mixtures
    from flan_jax.data.mixture_cmd import plot_shares
    from flan_jax.eval.evaluate import EvalConfig, evaluate
    from flan_jax.eval.report import write_report
    from flan_jax.models import params_io
    from flan_jax.train import train as train_lib
    from flan_jax.train.train_cmd import parse_gin

    started = time.perf_counter()
    run_dir = Path(out or f"runs/main-{time.strftime('%Y%m%d-%H%M%S')}").absolute()
    run_dir.mkdir(parents=True, exist_ok=True)

    # ---- config: the experiment gin file (model, optimizer, mixture), then overrides.
    parse_gin(gin_files or [EXPERIMENT], list(gin_bindings or []))
    options = main_job_options()
    held_out = options["held_out_cluster"]
    if held_out not in flan_mini.CLUSTERS:
        raise FlanJaxError(f"main job: held-out cluster {held_out!r} is not a flan-mini cluster "
                           f"({', '.join(flan_mini.CLUSTERS)})")
    train_mixture = f"flan_mini_heldout_no_{held_out}"
    module = params_io.build_model(options["model"])
    eval_config = EvalConfig(split="validation",
                             max_examples=max_eval_examples or options["max_eval_examples"],
                             lengths=options["eval_lengths"], batch_size=64)
    print(f"flan_jax main job -> {run_dir}\n  model {type(module).__name__}, training mixture "
          f"{train_mixture}, held-out cluster {held_out}", flush=True)

    decls, _ = mixtures.load_files()
    plot_shares(train_mixture, mixtures.resolve(train_mixture, decls), run_dir / "mixture.png")

    # ---- before: step 0 (train() with no steps returns the initial state and writes nothing).
    # The trainer's directory is a subfolder: a model_dir holds only a run's own files.
    model_dir = str(run_dir / "train")
    initial = train_lib.train(mixture=train_mixture, model_dir=model_dir, num_steps=0)
    before = evaluate(module, initial.state.params, "flan_mini_eval", config=eval_config,
                      metadata={"step": 0, "held_out_cluster": held_out})
    write_report(before, run_dir / "eval_before")
    print(f"  before tuning: overall {before['overall']:.1f}", flush=True)

    # ---- tune: the same seeded init as step 0 (create_state is deterministic per seed).
    result = train_lib.train(mixture=train_mixture, model_dir=model_dir)
    _plot_losses(result.losses, run_dir / "loss.png")

    # ---- after
    after = evaluate(module, result.state.params, "flan_mini_eval", config=eval_config,
                     metadata={"step": result.step, "held_out_cluster": held_out})
    write_report(after, run_dir / "eval_after")
    _plot_before_after(before, after, held_out, run_dir / "clusters_before_after.png")

    table = summary_table(before, after, held_out)
    minutes = (time.perf_counter() - started) / 60
    summary = (f"# flan_jax main job\n\nTrained {result.step} steps on `{train_mixture}` "
               f"(final loss {result.losses[-1] if result.losses else float('nan'):.3f}); "
               f"evaluated zero-shot on the validation split of every flan-mini task "
               f"({eval_config.max_examples} examples each). {minutes:.1f} minutes.\n\n{table}\n")
    (run_dir / "summary.md").write_text(summary)
    (run_dir / "summary.json").write_text(json.dumps({
        "steps": result.step, "losses": result.losses, "held_out_cluster": held_out,
        "before": {c: v["score"] for c, v in before["clusters"].items()},
        "after": {c: v["score"] for c, v in after["clusters"].items()}}, indent=1))
    print("\n" + table + "\n")
    print(f"run folder {run_dir}:\n  train/checkpoints/   train/tensorboard/   eval_before/   eval_after/\n"
          f"  loss.png  mixture.png  clusters_before_after.png  summary.md\n"
          f"  (tensorboard --logdir {run_dir / 'train' / 'tensorboard'})  [{minutes:.1f} min]")
    return {"run_dir": run_dir, "before": before, "after": after, "losses": result.losses}


@gin.configurable
def main_job_options(model: Any = None, held_out_cluster: str | None = None,
                     max_eval_examples: int = 40, eval_lengths: dict | None = None) -> dict[str, Any]:
    """The main job's own settings, bound in the experiment gin file (`main_job_options.*`)."""
    from flan_jax.data import flan_mini

    if model is None:
        raise FlanJaxError("main job: bind main_job_options.model (the same config as train.model)")
    return {"model": model, "held_out_cluster": held_out_cluster or flan_mini.HELD_OUT_CLUSTER,
            "max_eval_examples": max_eval_examples,
            "eval_lengths": dict(eval_lengths or {"inputs": 64, "targets": 16})}


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    run_main_job(args.out, args.gin_file, args.gin_bindings, args.max_eval_examples)
    return 0


