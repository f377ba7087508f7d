"""The flan-nl main job's evaluation (its eval_before set, the Gemma 3 270M base) three ways:
`shared`: one rank_classify call per dataset by `method="shared"` (eval/prompt_sharing.py, the
job's evaluation before packed scoring), `per_dataset`: one call per dataset by the packed path,
`pooled`: one packed call for every dataset (`main_job.score`, the job's evaluation now).

    .venv/bin/python bench/main_job_eval.py            # all three, each in a fresh process
    .venv/bin/python bench/main_job_eval.py --mode pooled --passes 2

The examples are the job's (gin_configs/experiments/main_job.gin: the test split, 10 per held-in
dataset, 150 per held-out NLI dataset: 600, prompts of 21-61 tokens). Each mode runs in its own
process (nothing compiled is shared) with the main job's huge-page malloc; each prints per pass
the seconds, examples/s, the backend compilations and their seconds. The parent prints the
ratios of the first passes (what a job's evaluation phase pays) to `shared`'s and whether every
example's correctness is the same in all three.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

MODES = ("shared", "per_dataset", "pooled")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["all", *MODES], default="all")
    p.add_argument("--passes", type=int, default=1, help="passes per mode (the first compiles)")
    return p.parse_args(argv)


def child(mode: str, passes: int) -> dict:
    """Score the job's evaluation set `passes` times in this process; figures and correctness."""
    from flan_jax.data.tasks.registry import default_vocabulary
    from flan_jax.data.templates import flan_nl
    from flan_jax.eval import compilations
    from flan_jax.eval.rank_classification import rank_classify
    from flan_jax.experiments import main_job
    from flan_jax.models import params_io
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
    n = sum(len(rows) for by_source in examples.values() for rows in by_source.values())

    def per_dataset(method: str) -> dict:
        out: dict = {}
        for cluster, by_source in examples.items():
            for source, rows in by_source.items():
                result = rank_classify(module, params, rows, where=f"{cluster}/{source}", method=method, **kw)
                out.setdefault(cluster, {})[source] = [
                    int(p == main_job._text(r["answer"])) for p, r in zip(result.predicted_options, rows)]
        return out

    passes_out = []
    for _ in range(passes):
        start = time.perf_counter()
        with compilations.counted() as compiles:
            if mode == "pooled":
                correct = main_job.score(module, params, examples, **kw)
            else:
                correct = per_dataset("shared" if mode == "shared" else "packed")
        seconds = time.perf_counter() - start
        passes_out.append({"seconds": seconds, "examples_per_s": n / seconds,
                           "compilations": len(compiles), "compile_seconds": sum(compiles)})
    return {"mode": mode, "examples": n, "passes": passes_out, "correct": correct}


def main(args: argparse.Namespace) -> int:
    if args.mode != "all":
        res = child(args.mode, args.passes)
        for i, p in enumerate(res["passes"]):
            print(f"{args.mode}: pass {i}: {res['examples']} examples in {p['seconds']:.1f} s "
                  f"({p['examples_per_s']:.2f}/s), {p['compilations']} compilations ({p['compile_seconds']:.1f} s)",
                  file=sys.stderr, flush=True)
        print(json.dumps(res))
        return 0
    results = {}
    for mode in MODES:
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--mode", mode, "--passes", str(args.passes)],
                             stdout=subprocess.PIPE, text=True, check=True)
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    reference = results["shared"]["passes"][0]["seconds"]
    for mode in MODES:
        first = results[mode]["passes"][0]
        print(f"{mode:12s} first pass {first['seconds']:7.1f} s  {first['examples_per_s']:5.2f} examples/s  "
              f"{reference / first['seconds']:5.2f}x shared  compilations {first['compilations']} "
              f"({first['compile_seconds']:.1f} s)")
    same = all(results[m]["correct"] == results["shared"]["correct"] for m in MODES)
    print(f"every example's correctness equal in all three: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from flan_jax import host_malloc

    host_malloc.reexec_with_tuned_malloc(hugepages_only=True)
    sys.exit(main(parse_args()))
