"""The real-data main job's evaluation set (its eval_before: held-out RTE and CB, the held-in
datasets' rows, the Gemma 3 270M base) scored by the shared path and by the tree rows, per
dataset, in one process.

    .venv/bin/python bench/real_job_eval.py                # a first and a warm pass per method
    .venv/bin/python bench/real_job_eval.py --passes 3

The examples, lengths and acc_mutual_info selection are the job's (gin_configs/experiments/
real_job.gin, `real_data.eval_examples`, `real_data.score`); MMLU is left out (its own path,
`eval.mmlu`). Methods alternate, shared first: the first pass of each pays its compilations
(no persistent compilation cache here), later passes are warm. Printed per method and pass:
seconds per dataset and in all, examples/s, compilations and their seconds; then per pass the
ratio of the tree rows' examples/s to the shared path's, and the examples whose correctness
differs between the two (a near-tie may flip within float32 noise: docs/main_job.md names one).
The machine is shared and noisy: compare ratios within one invocation.
"""
from __future__ import annotations

import argparse
import sys
import time

METHODS = ("shared", "packed")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--passes", type=int, default=2, help="passes per method (the first compiles)")
    args = p.parse_args(argv)
    from flan_jax import host_malloc

    host_malloc.reexec_with_tuned_malloc(hugepages_only=True)  # as flan-jax main runs
    import jax

    from flan_jax.data.tasks.registry import default_vocabulary
    from flan_jax.eval import compilations
    from flan_jax.experiments import main_job, real_data
    from flan_jax.models import params_io
    from flan_jax.train.gin_config import parse_gin

    parse_gin([real_data.EXPERIMENT], [])
    options = real_data.real_job_options()
    config, params = params_io.load_checkpoint(main_job.use_base(options["base"]))
    module = params_io.build_model(config)
    params = jax.device_put(params)
    vocabulary = default_vocabulary()
    examples = real_data.eval_examples(options, vocabulary)[0]
    n = sum(len(rows) for by_source in examples.values() for rows in by_source.values())
    kw = {"vocabulary": vocabulary, "lengths": options["eval_lengths"], "batch_size": options["eval_batch_size"],
          "mutual_info": options["mutual_info"]}
    print(f"real-data job evaluation set: {n} examples in {sum(map(len, examples.values()))} datasets", flush=True)
    seconds: dict[tuple[str, int], float] = {}
    correct: dict[str, dict] = {}
    for run in range(args.passes):
        for method in METHODS:
            per_source, total = [], 0.0
            with compilations.counted() as compiles:
                for cluster, by_source in examples.items():
                    for source, rows in by_source.items():
                        t = time.perf_counter()
                        got = real_data.score(module, params, {cluster: {source: rows}}, method=method, **kw)
                        dt = time.perf_counter() - t
                        total += dt
                        per_source.append(f"{source} {dt:.1f}")
                        for metric, by_cluster in got.items():
                            correct.setdefault(method, {}).setdefault(metric, {}).update(
                                {source: by_cluster[cluster][source]})
            seconds[method, run] = total
            print(f"{method:7s} pass {run}: {total:7.1f} s  {n / total:5.2f} examples/s  compilations "
                  f"{len(compiles)} ({sum(compiles):.1f} s)  [{', '.join(per_source)}]", flush=True)
        print(f"pass {run}: tree rows / shared examples/s {seconds['shared', run] / seconds['packed', run]:.2f}x",
              flush=True)
    differ = [(metric, source, i) for metric, by_source in correct["shared"].items()
              for source, hits in by_source.items()
              for i, (a, b) in enumerate(zip(hits, correct["packed"][metric][source])) if a != b]
    print(f"examples whose correctness differs between the methods: {len(differ)} {differ}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
