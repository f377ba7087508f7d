"""Held-out experiment reports: per-cluster scores with 95% bootstrap intervals, per-template
spread, paired changes (after - before, after - control), the Markdown table and two plots.
Shared by the experiments (experiments/main_job.py, experiments/real_job.py).

    report({"nl_nli": {"nl_nli_people": [1, 0, 1]}}, examples)   -> report.json's format
    summarize(before, after, control, correct, "nl_nli")          -> {cluster: row}
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def report(correct: Mapping[str, Mapping[str, Sequence[int]]], examples: Mapping[str, Mapping[str, list[dict]]],
           **metadata: Any) -> dict[str, Any]:
    """A report dict (eval/report.write_report's format) with 95% intervals per cluster and the
    per-template mean/min/max of each cluster."""
    from flan_jax.eval import bootstrap

    clusters, task_reports = {}, []
    for cluster, by_source in correct.items():
        lo, hi = bootstrap.interval(by_source)
        per_template: dict[int, list[int]] = {}
        for source, values in by_source.items():
            for row, ok in zip(examples[cluster][source], values):
                per_template.setdefault(int(row.get("template_index", 0)), []).append(ok)
            task_reports.append({"task": source, "dataset": source, "cluster": cluster, "metric": "accuracy",
                                 "method": "rank_classification", "num_examples": len(values),
                                 "headline": 100.0 * float(np.mean(values)), "scores": {"accuracy": 100.0 * float(np.mean(values))}})
        template_means = [100.0 * float(np.mean(v)) for v in per_template.values()]
        clusters[cluster] = {"score": bootstrap.cluster_score(by_source), "ci95": [lo, hi],
                             "num_tasks": len(by_source), "num_examples": sum(len(v) for v in by_source.values()),
                             "template_mean": float(np.mean(template_means)),
                             "template_min": float(np.min(template_means)),
                             "template_max": float(np.max(template_means))}
    overall = float(np.mean([c["score"] for c in clusters.values()]))
    return {**metadata, "tasks": task_reports, "clusters": clusters, "overall": overall, "skipped": []}


def summarize(before: dict, after: dict, control: dict | None, correct: Mapping[str, Any],
              held_out: str, trained: Sequence[str] = ()) -> dict[str, Any]:
    """Per cluster: before/after(/control) scores with intervals and the paired changes.
    `trained`: the clusters the tuning mixture holds (others are held out or excluded with it)."""
    from flan_jax.eval import bootstrap

    rows = {}
    for cluster in after["clusters"]:
        row = {"held_out": cluster == held_out, "trained_on": cluster in trained,
               "before": before["clusters"][cluster]["score"], "before_ci95": before["clusters"][cluster]["ci95"],
               "after": after["clusters"][cluster]["score"], "after_ci95": after["clusters"][cluster]["ci95"],
               "after_minus_before": bootstrap.paired_difference(correct["before"][cluster], correct["after"][cluster])}
        if control is not None and cluster in control["clusters"]:
            row["control"] = control["clusters"][cluster]["score"]
            row["control_ci95"] = control["clusters"][cluster]["ci95"]
            row["after_minus_control"] = bootstrap.paired_difference(correct["control"][cluster],
                                                                     correct["after"][cluster])
        rows[cluster] = row
    return rows


def summary_table(rows: Mapping[str, Any]) -> str:
    """Markdown: per cluster before, after (and control) with 95% intervals and the changes."""
    has_control = any("control" in r for r in rows.values())
    head = "| cluster | before | after | after - before |" + (" control | after - control |" if has_control else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for cluster, r in sorted(rows.items(), key=lambda kv: (not kv[1]["held_out"], kv[0])):
        d = r["after_minus_before"]
        name = (f"**{cluster} (held out)**" if r["held_out"] else
                cluster if r.get("trained_on", True) else f"{cluster} (excluded with it)")
        line = (f"| {name} | {r['before']:.1f} [{r['before_ci95'][0]:.1f}, {r['before_ci95'][1]:.1f}] | "
                f"{r['after']:.1f} [{r['after_ci95'][0]:.1f}, {r['after_ci95'][1]:.1f}] | "
                f"{d['difference']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}] |")
        if has_control:
            if "control" in r:
                c = r["after_minus_control"]
                line += (f" {r['control']:.1f} [{r['control_ci95'][0]:.1f}, {r['control_ci95'][1]:.1f}] | "
                         f"{c['difference']:+.1f} [{c['low']:+.1f}, {c['high']:+.1f}] |")
            else:
                line += " | |"
        lines.append(line)
    return "\n".join(lines)


def plot_losses(curves: Mapping[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, losses in curves.items():
        ax.plot(range(1, len(losses) + 1), losses, lw=1, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (per target token)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_clusters(rows: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clusters = sorted(rows)
    x = np.arange(len(clusters))
    fig, ax = plt.subplots(figsize=(8, 4))
    series = [("before", -0.27), ("after", 0.0)] + ([("control", 0.27)] if any("control" in r for r in rows.values()) else [])
    for key, dx in series:
        have = [i for i, c in enumerate(clusters) if key in rows[c]]  # the control: held-out only
        vals = np.array([rows[clusters[i]][key] for i in have])
        ci = np.array([rows[clusters[i]][f"{key}_ci95"] for i in have])
        err = np.clip(np.stack([vals - ci[:, 0], ci[:, 1] - vals]), 0, None)
        ax.bar(x[have] + dx, vals, 0.27, yerr=err, capsize=2, label=key)
    ax.set_xticks(x, [c.replace("nl_", "") + (" (held out)" if rows[c]["held_out"] else "") for c in clusters],
                  rotation=30, ha="right")
    ax.set_ylabel("accuracy (%), 95% bootstrap interval")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

