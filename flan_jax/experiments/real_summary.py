"""The real-data job's summary: per dataset and per cluster before / after / control, the
majority-class baseline, paired changes with 95% bootstrap intervals (eval/bootstrap.py),
per-template min/max and the prior-corrected accuracy (lm-eval's acc_mutual_info).

Inputs are the evaluation phases' outputs: {"correct": {"acc" | "acc_mutual_info": {cluster:
{source: [0/1 per example]}}}, "mmlu": ...}, all scored on the same examples in the same order,
so every change is paired by example.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _templates(values: Sequence[int], rows: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    """(min, max) over templates of the accuracy of the examples rendered with that template."""
    per: dict[int, list[int]] = {}
    for ok, row in zip(values, rows):
        per.setdefault(int(row.get("template_index", 0)), []).append(ok)
    means = [100.0 * float(np.mean(v)) for v in per.values()]
    return min(means), max(means)


def _row(phases: Mapping[str, Mapping[str, Sequence[int]] | None],
         calibrated: Mapping[str, Mapping[str, Sequence[int]] | None]) -> dict[str, Any]:
    """One summary row from {phase: {source: per-example 0/1}} (the same examples per phase)."""
    from flan_jax.eval import bootstrap

    out: dict[str, Any] = {"n": sum(len(v) for v in phases["before"].values())}
    for name, per in phases.items():
        if per is None:
            continue
        out[name] = bootstrap.cluster_score(per)
        out[f"{name}_ci95"] = list(bootstrap.interval(per))
        if calibrated.get(name) is not None:
            out[f"{name}_calibrated"] = bootstrap.cluster_score(calibrated[name])
    out["after_minus_before"] = bootstrap.paired_difference(phases["before"], phases["after"])
    if phases.get("control") is not None:
        out["after_minus_control"] = bootstrap.paired_difference(phases["control"], phases["after"])
    return out


def summary_rows(before: Mapping[str, Any], after: Mapping[str, Any], control: Mapping[str, Any] | None,
                 examples: Mapping[str, Mapping[str, list[dict]]], held_out: Sequence[str]) -> dict[str, Any]:
    """{"datasets": {source: row}, "clusters": {cluster: row}, "held_out_pooled": row}."""
    from flan_jax.eval import baselines

    results = {"before": before, "after": after, "control": control}

    def pick(metric: str, select) -> dict[str, Any]:
        """{phase: select(per-example 0/1 of `metric`)}; None where a phase or a dataset lacks it
        (acc_mutual_info is scored only on datasets with a fixed label set, real_data.score)."""
        def one(r):
            try:
                return select(r["correct"][metric])
            except KeyError:
                return None
        return {k: None if r is None else one(r) for k, r in results.items()}

    datasets, clusters = {}, {}
    for cluster, by_source in examples.items():
        for source, rows in by_source.items():
            row = _row(pick("acc", lambda c: {source: c[cluster][source]}),
                       pick("acc_mutual_info", lambda c: {source: c[cluster][source]}))
            row.update(cluster=cluster, held_out=cluster in held_out,
                       majority=baselines.majority([r["answer"] for r in rows])["score"],
                       chance=baselines.uniform_chance([r["options"] for r in rows]))
            lo, hi = _templates(after["correct"]["acc"][cluster][source], rows)
            row.update(after_template_min=lo, after_template_max=hi)
            datasets[source] = row
        clusters[cluster] = _row(pick("acc", lambda c: c[cluster]),
                                 pick("acc_mutual_info", lambda c: {s: c[cluster][s] for s in by_source}))
        clusters[cluster]["held_out"] = cluster in held_out
        # the cluster score is the mean over its datasets; so is its baseline
        clusters[cluster]["majority"] = float(np.mean([datasets[s]["majority"] for s in by_source]))
    pooled = None
    if held_out:
        def merged(c):
            return {s: c[cl][s] for cl in held_out for s in examples[cl]}
        pooled = _row(pick("acc", merged), pick("acc_mutual_info", merged))
        pooled["majority"] = float(np.mean([datasets[s]["majority"] for cl in held_out for s in examples[cl]]))
    return {"datasets": datasets, "clusters": clusters, "held_out_pooled": pooled}


def _d(change: Mapping[str, float] | None) -> str:
    if change is None:
        return "-"
    return f"{change['difference']:+.1f} [{change['low']:+.1f}, {change['high']:+.1f}]"


def _v(row: Mapping[str, Any], key: str) -> str:
    return "-" if key not in row else f"{row[key]:.1f}"


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """summary.md: the recipe, then per dataset and per cluster tables, MMLU, time and memory."""
    o = summary["options"]
    head = ("| {what} | n | majority | before | after | control | after - before | after - control | "
            "calibrated before / after / control |")
    lines = [f"# flan_jax real-data job\n\nBase {summary['base']}; tuned {summary['steps']} steps on the "
             f"held-in clusters {', '.join(o['held_in'])} ({sum(summary['train_examples'].values())} rendered "
             f"training examples, at most {o['train_examples_per_dataset']} per dataset); held out "
             f"{', '.join(s for v in o['held_out'].values() for s in v)} on `{o['held_out_split']}`; control: "
             f"{o['control'] or 'none'}. Zero-shot rank classification (FLAN: option + EOS), every non-inverted "
             f"template in turn; calibrated = acc_mutual_info (on datasets with a fixed label set; '-' "
             f"elsewhere). Intervals: 95% bootstrap, changes paired by example. Recipe: {o['recipe_note'] or 'not swept in this run'}.\n"]
    for what, table in (("dataset", summary["datasets"]), ("cluster", summary["clusters"])):
        lines += ["", head.format(what=what), "|" + "---|" * 9]
        for name, r in sorted(table.items(), key=lambda kv: (not kv[1]["held_out"], kv[0])):
            label = name + (" (held out)" if r["held_out"] else "")
            cal = " / ".join(_v(r, f"{k}_calibrated") for k in ("before", "after", "control"))
            lines.append(f"| {label} | {r['n']} | {_v(r, 'majority')} | {_v(r, 'before')} | {_v(r, 'after')} | "
                         f"{_v(r, 'control')} | {_d(r.get('after_minus_before'))} | "
                         f"{_d(r.get('after_minus_control'))} | {cal} |")
    p = summary.get("held_out_pooled")
    if p:
        ctrl = "" if "control" not in p else f", control {p['control']:.1f}"
        lines += ["", f"Held-out clusters pooled ({p['n']} examples, the mean over datasets): before {p['before']:.1f}, after {p['after']:.1f}"
                  f"{ctrl}, majority {p['majority']:.1f}; after - before {_d(p['after_minus_before'])}, "
                  f"after - control {_d(p.get('after_minus_control'))}."]
    m = summary.get("mmlu") or {}
    if m.get("before"):
        def mm(x):
            return "-" if not x else (f"{x['macro']['score']:.1f} [{x['macro']['low']:.1f}, "
                                      f"{x['macro']['high']:.1f}]")
        lines += ["", f"MMLU validation (zero-shot, letters, macro over subjects, {m['before']['n']} questions): "
                  f"before {mm(m['before'])}, after {mm(m['after'])}, control {mm(m.get('control'))}."]
    lines += ["", f"{summary['minutes']:.1f} minutes ({', '.join(f'{k} {v:.1f}' for k, v in summary['phase_minutes'].items())}); "
              f"peak resident memory {summary['peak_rss_gib']:.1f} GiB. Prompts dropped as longer than the "
              f"evaluation length: {sum(summary['dropped_long_prompts'].values())}."]
    return "\n".join(lines) + "\n"
