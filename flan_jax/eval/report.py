"""Evaluation report files: JSON (everything), Markdown tables (per task, per cluster), a bar chart.

    write_report(report, "out/") -> {"json": out/report.json, "markdown": out/report.md,
                                     "plot": out/clusters.png}

`report` is the dict `evaluate.evaluate` returns. The Markdown has a summary table of cluster
scores (mean over datasets of their template means, with the min and max over templates), a
per-dataset table of the template spread, and one task table per cluster (task, template,
method, metric, score, chance, examples, then the majority-class baseline and, where
several scoring conventions were asked (`EvalConfig.scoring`), each one's metrics side by
side); the plot shows the cluster means as bars with the
template min-max range as error bars (and the rank-classification chance level dashed where all
of a cluster's tasks are rank-classified), headless (matplotlib Agg). A `forgetting_probe`
entry (flan-jax eval --probe_text) is shown under the overall score. Reports written before
per-template evaluation (no `templates` key) render as before.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

JSON_FILE, MARKDOWN_FILE, PLOT_FILE = "report.json", "report.md", "clusters.png"


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.1f}" if isinstance(x, float) else str(x)


def cluster_chance(report: Mapping[str, Any], cluster: str) -> float | None:
    """Mean chance level of a cluster when every one of its tasks is rank-classified."""
    chances = [t.get("chance") for t in report["tasks"] if t["cluster"] == cluster]
    if not chances or any(c is None for c in chances):
        return None
    return sum(chances) / len(chances)


def markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown: header, cluster summary, then one task table per cluster."""
    what = report.get("evaluation")
    what = what if isinstance(what, str) else ", ".join(what or [])
    lines = [f"# Evaluation: {what}", ""]
    meta = [f"split `{report.get('split')}`", f"{report.get('shots', 0)}-shot"]
    for key in ("checkpoint", "step", "max_examples"):
        if report.get(key) is not None:
            meta.append(f"{key} `{report[key]}`")
    lines += [", ".join(meta), "", f"**Overall (mean over clusters): {_fmt(report['overall'])}**", ""]
    probe = report.get("forgetting_probe")
    if probe:
        lines += [f"**Forgetting probe (LM loss on held-back text, lower is better): "
                  f"{probe['loss_per_token']:.4f} nats/token** ({probe['objective']}, "
                  f"{probe['tokens']} tokens in {probe['chunks']} chunks of "
                  f"{', '.join(f'`{f}`' for f in probe.get('files', []))})", ""]
    side = report.get("side_scores") or {}
    keys = sorted(k for k in side if k != "majority")  # "<convention>.<metric>"
    lines += ["## Clusters", "",
              "score: mean over the cluster's datasets of their mean over templates; min / max: "
              "the same with each dataset's worst / best template; majority: always answering the "
              "most frequent gold answer; further columns: each scoring convention's metrics "
              "(eval/conventions.py), averaged like score.", "",
              "| cluster | tasks | score | min | max | chance | majority |" + "".join(f" {k} |" for k in keys),
              "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(keys)]
    for cluster, c in report["clusters"].items():
        lines.append(f"| {cluster} | {c['num_tasks']} | {_fmt(c['score'])} | "
                     f"{_fmt(c.get('template_min'))} | {_fmt(c.get('template_max'))} | "
                     f"{_fmt(cluster_chance(report, cluster))} | "
                     f"{_fmt(side.get('majority', {}).get(cluster))} |"
                     + "".join(f" {_fmt(side[k].get(cluster))} |" for k in keys))
    datasets = report.get("templates", {}).get("datasets", {})
    if datasets:
        lines += ["", "## Datasets over templates", "",
                  "| dataset | cluster | templates | mean | min | max |", "|---|---|---:|---:|---:|---:|"]
        for name, d in datasets.items():
            lines.append(f"| {name} | {d['cluster']} | {d['num_templates']} | {_fmt(d['mean'])} | "
                         f"{_fmt(d['min'])} | {_fmt(d['max'])} |")
    for cluster in report["clusters"]:
        lines += ["", f"## {cluster}", "",
                  "| task | template | method | metric | score | chance | examples | truncated | majority |"
                  + "".join(f" {k} |" for k in keys),
                  "|---|---:|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(keys)]
        for t in report["tasks"]:
            if t["cluster"] != cluster:
                continue
            by_key = {f"{c}.{m}": v for c, ms in (t.get("scoring") or {}).items() for m, v in ms.items()}
            lines.append(f"| {t['task']} | {_fmt(t.get('template'))} | {t['method']} | {t['metric']} | "
                         f"{_fmt(t['headline'])} | {_fmt(t.get('chance'))} | {t['num_examples']} | "
                         f"{t.get('truncated', 0)} | {_fmt((t.get('baselines') or {}).get('majority'))} |"
                         + "".join(f" {_fmt(by_key.get(k))} |" for k in keys))
    if report.get("skipped"):
        lines += ["", "## Skipped", ""]
        lines += [f"- {item['task']}: {item['reason']}" for item in report["skipped"]]
    return "\n".join(lines) + "\n"


def plot(report: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Bar chart of the cluster scores (PNG)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    clusters = list(report["clusters"])
    scores = [report["clusters"][c]["score"] for c in clusters]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(clusters) + 1.5), 3.6))
    lows = [report["clusters"][c].get("template_min", s) for c, s in zip(clusters, scores)]
    highs = [report["clusters"][c].get("template_max", s) for c, s in zip(clusters, scores)]
    spread = [[s - lo for s, lo in zip(scores, lows)], [hi - s for s, hi in zip(scores, highs)]]
    bars = ax.bar(range(len(clusters)), scores, color="#4477aa",
                  yerr=spread if any(map(any, spread)) else None, capsize=3,
                  error_kw={"ecolor": "#222222", "elinewidth": 1})
    for i, c in enumerate(clusters):
        chance = cluster_chance(report, c)
        if chance is not None:
            ax.hlines(chance, i - 0.4, i + 0.4, colors="#cc3311", linestyles="dashed",
                      label="chance" if i == 0 or "chance" not in ax.get_legend_handles_labels()[1] else None)
    ax.bar_label(bars, labels=[_fmt(s) for s in scores], fontsize=8)
    ax.set_xticks(range(len(clusters)), clusters, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("score (0-100)")
    title = report.get("evaluation")
    whiskers = "\nwhiskers: template min-max" if any(map(any, spread)) else ""
    ax.set_title(f"{title if isinstance(title, str) else 'tasks'}, {report.get('shots', 0)}-shot"
                 f"{whiskers}", fontsize=9)
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def write_report(report: Mapping[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Writes report.json, report.md and clusters.png into `out_dir` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / JSON_FILE, "markdown": out / MARKDOWN_FILE, "plot": out / PLOT_FILE}
    paths["json"].write_text(json.dumps(report, indent=2, sort_keys=False, default=_jsonable) + "\n")
    paths["markdown"].write_text(markdown(report))
    plot(report, paths["plot"])
    return paths


def _jsonable(x: Any) -> Any:
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    return str(x)
