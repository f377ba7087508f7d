"""Scores per template -> mean, min and max per dataset and per cluster (a pure function), and
the pooling of {cluster: {source: examples}} into one scoring call and back.

FLAN 2021 ("Finetuned Language Models Are Zero-Shot Learners", Wei et al.) reports the spread
of zero-shot scores over a dataset's instruction templates next to their mean; `template_spread` computes that spread
from whatever produced the scores (our evaluation, a bootstrap resample, another tool).

    template_spread({"rte": {1: 60.0, 2: 70.0}, "cb": {0: 50.0}},
                    {"rte": "nli", "cb": "nli"})
    -> {"datasets": {"cb":  {"mean": 50.0, "min": 50.0, "max": 50.0, "num_templates": 1,
                             "cluster": "nli", "templates": {"0": 50.0}},
                     "rte": {"mean": 65.0, "min": 60.0, "max": 70.0, "num_templates": 2,
                             "cluster": "nli", "templates": {"1": 60.0, "2": 70.0}}},
        "clusters": {"nli": {"mean": 57.5, "min": 55.0, "max": 60.0, "num_datasets": 2}}}

A cluster's mean is the mean over its datasets of their template means (each dataset counts
once, however many templates it has); its min and max are the means over its datasets of
their worst and best template, i.e. the score the cluster would get if every dataset were
asked with its worst (best) template. Template keys are strings so the result is JSON as is.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import fmean
from typing import Any


def template_spread(
    scores: Mapping[str, Mapping[int | str, float]], clusters: Mapping[str, str]
) -> dict[str, dict]:
    """Aggregates `scores` (dataset -> {template index: score}); see the module docstring.

    Raises ValueError for a dataset without scores or without a cluster.
    """
    datasets: dict[str, dict] = {}
    for name in sorted(scores):
        per_template = {str(k): float(v) for k, v in sorted(scores[name].items(), key=lambda kv: int(kv[0]))}
        if not per_template:
            raise ValueError(f"dataset {name!r}: no template scores")
        if name not in clusters:
            raise ValueError(f"dataset {name!r}: no cluster given")
        values = list(per_template.values())
        datasets[name] = {"mean": fmean(values), "min": min(values), "max": max(values),
                          "num_templates": len(values), "cluster": clusters[name],
                          "templates": per_template}
    by_cluster: dict[str, list[dict]] = {}
    for entry in datasets.values():
        by_cluster.setdefault(entry["cluster"], []).append(entry)
    out_clusters = {
        c: {"mean": fmean(e["mean"] for e in entries), "min": fmean(e["min"] for e in entries),
            "max": fmean(e["max"] for e in entries), "num_datasets": len(entries)}
        for c, entries in sorted(by_cluster.items())
    }
    return {"datasets": datasets, "clusters": out_clusters}


def side_scores(task_reports: Sequence[Mapping[str, Any]], cluster_of: Mapping[str, str]
                ) -> dict[str, dict[str, float]]:
    """Per cluster, aggregated like the headline score (the mean over datasets of their template
    means): the majority baseline ("majority") and every "<convention>.<metric>" score the task
    entries carry (`evaluate.evaluate_examples`); a cluster gets a key only when every one of
    its datasets has it.

        tasks   rte t0 {"flan": {"acc": 60}}, rte t1 {"flan": {"acc": 70}}, cb t0 {"flan": {"acc": 40}}
        -> {"flan.acc": {"nli": ((60 + 70) / 2 + 40) / 2 = 52.5}}
    """
    values: dict[str, dict[str, dict[int, float]]] = {}
    for t in task_reports:
        dataset = t.get("source") or t["task"].rpartition(":")[0]
        template = -1 if t.get("template") is None else int(t["template"])
        side = {f"{c}.{m}": v for c, ms in (t.get("scoring") or {}).items() for m, v in ms.items()}
        if (t.get("baselines") or {}).get("majority") is not None:
            side["majority"] = t["baselines"]["majority"]
        for key, v in side.items():
            values.setdefault(key, {}).setdefault(dataset, {})[template] = float(v)
    out: dict[str, dict[str, float]] = {}
    for key, scores in values.items():
        complete = {c for c in set(cluster_of.values()) if all(d in scores for d, dc in cluster_of.items() if dc == c)}
        kept = {d: s for d, s in scores.items() if cluster_of[d] in complete}
        if kept:
            out[key] = {c: s["mean"] for c, s in template_spread(kept, cluster_of)["clusters"].items()}
    return out


def pool_by_dataset(examples: Mapping[str, Mapping[str, Sequence[Any]]]) -> list[Any]:
    """The examples of {cluster: {source: rows}} in one list, cluster by cluster and source by
    source (one scoring call for all: `main_job.score`, `real_data.score`).
    Example: {"nli": {"rte": [a, b]}, "qa": {"arc": [c]}} -> [a, b, c]."""
    return [row for by_source in examples.values() for rows in by_source.values() for row in rows]


def split_by_dataset(values: Sequence[Any], examples: Mapping[str, Mapping[str, Sequence[Any]]]
                     ) -> dict[str, dict[str, list[Any]]]:
    """{cluster: {source: values}}: per-example `values` in `pool_by_dataset(examples)`'s order,
    split back by dataset. Example: [1, 0, 1] and {"nli": {"rte": [a, b]}, "qa": {"arc": [c]}}
    -> {"nli": {"rte": [1, 0]}, "qa": {"arc": [1]}}."""
    out: dict[str, dict[str, list[Any]]] = {}
    start = 0
    for cluster, by_source in examples.items():
        for source, rows in by_source.items():
            out.setdefault(cluster, {})[source] = list(values[start:start + len(rows)])
            start += len(rows)
    return out
