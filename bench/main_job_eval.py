"""The flan-nl main job's evaluation (its eval_before set, the Gemma 3 270M base) three ways:
`shared`: one rank_classify call per dataset by `method="shared"` (eval/prompt_sharing.py, the
job's evaluation before packed scoring: the issue's "today"), `per_dataset`: one call per
dataset by the packed path (eval/packed_scoring.py's tree rows), `pooled`: one packed call for
every dataset (the call `main_job.score` makes, the job's evaluation now).

    .venv/bin/python bench/main_job_eval.py            # all three, each in a fresh process
    .venv/bin/python bench/main_job_eval.py --rounds 2     # shared, per_dataset, pooled, pooled, ...
    .venv/bin/python bench/main_job_eval.py --mode pooled --passes 2

The examples are the job's (gin_configs/experiments/main_job.gin: the test split, 10 per held-in
dataset, 150 per held-out NLI dataset: 600, prompts of 21-61 tokens). Each mode runs in its own
process (nothing compiled is shared) with the main job's tuned malloc; each prints per pass
the seconds, examples/s, model GFLOP/s and its ratio to the float32 matmul peak measured in that
process (`train.metrics.measure_matmul_peak`, 2048^3, before the passes), and the backend
compilations and their seconds. Model FLOPs: 2 x non-embedding parameters per position of one
row per example holding its prompt once and every option after it (BOS + inputs + each option
but its last token), plus 2 x vocab x emb_dim per scored token; attention left out. The parent
prints the ratios of the first passes (what a job's evaluation phase pays) to `shared`'s, whether
every example's correctness is the same in all three, and the largest difference of an option's
log-likelihood from `shared`'s.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import jax
import numpy as np

MODES = ("shared", "per_dataset", "pooled")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["all", *MODES], default="all")
    p.add_argument("--passes", type=int, default=1, help="passes per mode (the first compiles)")
    p.add_argument("--rounds", type=int, default=1,
                   help="fresh processes per mode, in the order shared, per_dataset, pooled, then reversed, ...; "
                        "the ratios use the mean first pass (this machine's speed drifts within minutes)")
    return p.parse_args(argv)


def child(mode: str, passes: int) -> dict:
    """Score the job's evaluation set `passes` times in this process; figures and correctness."""
    from flan_jax.data.tasks.registry import default_vocabulary
    from flan_jax.data.templates import flan_nl
    from flan_jax.eval import compilations
    from flan_jax.eval.aggregate import pool_by_dataset, split_by_dataset
    from flan_jax.eval.rank_classification import rank_classify
    from flan_jax.experiments import main_job
    from flan_jax.models import params_io
    from flan_jax.train import metrics
    from flan_jax.train.gin_config import parse_gin

    parse_gin([main_job.EXPERIMENT], [])
    options = main_job.main_job_options()
    config, params = params_io.load_checkpoint(main_job.use_base(options["base"]))
    module = params_io.build_model(config)
    vocabulary = default_vocabulary()
    held_out = options["held_out_cluster"]
    held_in = {c: flan_nl.cluster_datasets(c) for c in flan_nl.CLUSTERS if c != held_out}
    examples = main_job.eval_examples(held_in, options["eval_split"], options["held_in_examples_per_task"], vocabulary)
    examples.update(main_job.eval_examples({held_out: flan_nl.cluster_datasets(held_out)}, options["eval_split"],
                                           options["held_out_examples_per_task"], vocabulary))
    kw = {"vocabulary": vocabulary, "lengths": options["eval_lengths"], "batch_size": options["eval_batch_size"]}
    pooled = pool_by_dataset(examples)
    n = len(pooled)
    flops = model_flops(module, params, pooled, vocabulary, options["eval_lengths"])
    peak = metrics.measure_matmul_peak(2048)

    def run() -> tuple[dict, list]:
        correct: dict = {}
        lls: list = []
        if mode == "pooled":  # main_job.score's call, with the log-likelihoods kept
            result = rank_classify(module, params, pooled, where="main job evaluation", **kw)
            hits = [int(p == main_job._text(r["answer"])) for p, r in zip(result.predicted_options, pooled)]
            return split_by_dataset(hits, examples), [ll.tolist() for ll in result.log_likelihoods]
        for cluster, by_source in examples.items():
            for source, rows in by_source.items():
                result = rank_classify(module, params, rows, where=f"{cluster}/{source}",
                                       method="shared" if mode == "shared" else "packed", **kw)
                correct.setdefault(cluster, {})[source] = [
                    int(p == main_job._text(r["answer"])) for p, r in zip(result.predicted_options, rows)]
                lls.extend(ll.tolist() for ll in result.log_likelihoods)
        return correct, lls

    passes_out = []
    for _ in range(passes):
        start = time.perf_counter()
        with compilations.counted() as compiles:
            correct, lls = run()
        seconds = time.perf_counter() - start
        passes_out.append({"seconds": seconds, "examples_per_s": n / seconds, "model_gflop_per_s": flops / seconds / 1e9,
                           "of_peak": flops / seconds / peak, "compilations": len(compiles),
                           "compile_seconds": sum(compiles)})
    return {"mode": mode, "examples": n, "model_gflop": flops / 1e9, "matmul_peak_gflop_per_s": peak / 1e9,
            "passes": passes_out, "correct": correct, "log_likelihoods": lls}


def model_flops(module, params, rows: list[dict], vocabulary, lengths) -> float:
    """Model FLOPs of scoring `rows` (module docstring), from their tokenized option segments."""
    from flan_jax.eval import rank_classification as rc
    from flan_jax.eval.prompt_sharing import split_segment

    cfg = module.config
    body = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params)) - cfg.vocab_size * cfg.emb_dim
    segments, owner, _, _ = rc.option_rows(rows, vocabulary, "decoder", lengths, bos_id=cfg.bos_token_id)
    positions = scored = 0
    seen = set()
    for seg, e in zip(segments, owner):
        prompt, option, weights = split_segment(seg)
        if int(e) not in seen:
            seen.add(int(e))
            positions += prompt.size + 1
        positions += max(option.size - 1, 0)
        scored += int((weights > 0).sum())
    return 2.0 * body * positions + 2.0 * cfg.vocab_size * cfg.emb_dim * scored


def main(args: argparse.Namespace) -> int:
    if args.mode != "all":
        res = child(args.mode, args.passes)
        for i, p in enumerate(res["passes"]):
            print(f"{args.mode}: pass {i}: {res['examples']} examples in {p['seconds']:.1f} s "
                  f"({p['examples_per_s']:.2f}/s, {p['model_gflop_per_s']:.0f} model GFLOP/s = {p['of_peak']:.2f} of "
                  f"the {res['matmul_peak_gflop_per_s']:.0f} GFLOP/s matmul peak), {p['compilations']} compilations "
                  f"({p['compile_seconds']:.1f} s)", file=sys.stderr, flush=True)
        print(json.dumps(res))
        return 0
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for r in range(args.rounds):
        for mode in (MODES if r % 2 == 0 else MODES[::-1]):
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--mode", mode, "--passes",
                                  str(args.passes)], stdout=subprocess.PIPE, text=True, check=True)
            results[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    first = {m: [res["passes"][0] for res in results[m]] for m in MODES}
    mean = {m: float(np.mean([p["seconds"] for p in first[m]])) for m in MODES}
    print(f"model FLOPs of the set: {results['shared'][0]['model_gflop']:.0f} GFLOP; first passes over {args.rounds} "
          f"round(s), mean (each)")
    for mode in MODES:
        runs = results[mode]
        rate = np.mean([p["model_gflop_per_s"] for p in first[mode]])
        peak = np.mean([res["matmul_peak_gflop_per_s"] for res in runs])
        each = ", ".join(f"{p['seconds']:.1f}" for p in first[mode])
        print(f"{mode:12s} first pass {mean[mode]:7.1f} s ({each})  "
              f"{runs[0]['examples'] / mean[mode]:5.2f} examples/s  {mean['shared'] / mean[mode]:5.2f}x shared  "
              f"{rate:4.0f} GFLOP/s = {np.mean([p['of_peak'] for p in first[mode]]):.2f} of peak ({peak:.0f})  "
              f"compilations {first[mode][0]['compilations']} ({np.mean([p['compile_seconds'] for p in first[mode]]):.1f} s)")
    results = {m: results[m][0] for m in MODES}
    same = all(results[m]["correct"] == results["shared"]["correct"] for m in MODES)
    print(f"every example's correctness equal in all three: {same}")
    want = np.concatenate([np.asarray(x) for x in results["shared"]["log_likelihoods"]])
    for mode in MODES[1:]:
        got = np.concatenate([np.asarray(x) for x in results[mode]["log_likelihoods"]])
        print(f"{mode}: largest |log-likelihood - shared's| over {want.size} options: {np.abs(got - want).max():.2e}")
    return 0 if same else 1


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from flan_jax import host_malloc

    host_malloc.reexec_with_tuned_malloc()  # as flan-jax main runs
    sys.exit(main(parse_args()))
