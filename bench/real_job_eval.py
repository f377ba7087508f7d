"""The real-data main job's evaluation set (its eval_before: held-out RTE and CB, the held-in
datasets' rows, the Gemma 3 270M base) scored three ways in one process: the shared path one call
per dataset (the reference), the tree rows one call per dataset, and the tree rows pooled as the
job scores (`real_data.score`: one call for the datasets with acc_mutual_info, one without).

    .venv/bin/python bench/real_job_eval.py                # a first and a warm pass per way
    .venv/bin/python bench/real_job_eval.py --passes 3

The examples, lengths and acc_mutual_info selection are the job's (gin_configs/experiments/
real_job.gin, `real_data.eval_examples`, `real_data.score`); MMLU is left out (its own path,
`eval.mmlu`). The ways alternate, shared first: the first pass of each pays its compilations
(no persistent compilation cache here), later passes are warm. Printed per way and pass:
seconds (per dataset where called per dataset) and in all, examples/s, compilations and their
seconds; then per pass each tree-row way's examples/s over the shared path's, and the examples
whose correctness differs from the shared path's (a near-tie may flip within float32 noise;
options equal within the targets length tie exactly, `rank_classification.distinct_segments`).
The machine is shared and noisy: compare ratios within one invocation.
"""
from __future__ import annotations

import argparse
import sys
import time

WAYS = (("shared", False), ("packed", False), ("packed", True))  # (method, pooled)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--passes", type=int, default=2, help="passes per way (the first compiles)")
    args = p.parse_args(argv)
    from flan_jax import host_malloc

    host_malloc.reexec_with_tuned_malloc()  # as flan-jax main runs
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
        for method, pooled in WAYS:
            way = f"{method} {'pooled' if pooled else 'per dataset'}"
            calls = [examples] if pooled else [{c: {s: rows}} for c, by in examples.items() for s, rows in by.items()]
            per_source, total = [], 0.0
            with compilations.counted() as compiles:
                for chosen in calls:
                    t = time.perf_counter()
                    got = real_data.score(module, params, chosen, method=method, **kw)
                    dt = time.perf_counter() - t
                    total += dt
                    if not pooled:
                        per_source.append(f"{next(iter(next(iter(chosen.values()))))} {dt:.1f}")
                    for metric, by_cluster in got.items():
                        for by_source in by_cluster.values():
                            correct.setdefault(way, {}).setdefault(metric, {}).update(by_source)
            seconds[way, run] = total
            print(f"{way:19s} pass {run}: {total:7.1f} s  {n / total:5.2f} examples/s  compilations "
                  f"{len(compiles)} ({sum(compiles):.1f} s)  [{', '.join(per_source)}]", flush=True)
        reference = seconds["shared per dataset", run]
        print(f"pass {run}: examples/s over the shared path's: " + ", ".join(
            f"{way} {reference / seconds[way, run]:.2f}x" for way in correct if way != "shared per dataset"), flush=True)
    for way in correct:
        if way == "shared per dataset":
            continue
        differ = [(metric, source, i) for metric, by_source in correct["shared per dataset"].items()
                  for source, hits in by_source.items()
                  for i, (a, b) in enumerate(zip(hits, correct[way][metric][source])) if a != b]
        print(f"examples whose correctness differs, {way} vs shared: {len(differ)} {differ}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
