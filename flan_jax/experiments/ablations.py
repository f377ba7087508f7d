"""FLAN 2021's two ablations on the real-data job (experiments/real_job.py), as functions a
notebook can call and `flan-jax main --experiment clusters | templates` runs.

* `clusters_ablation`: held-out NLI accuracy against the number of held-in clusters tuned on
  (Wei et al. 2021, section 4.1 and Figure 6: 1, 2, 4, ... all clusters). Clusters are added
  in `CLUSTER_ORDER`, fixed before any run; each point is one tuning from the base.
* `templates_ablation`: instructions against no template and against the dataset name only
  (section 4.3): the job's tuning with instructions, and the same rows tuned with each ablation
  (data/templates/ablations.py), all evaluated with instructions on the held-out datasets.

Each run writes its own run folder under `out` (resumable, experiments/phases.py) and the
ablation writes `<out>/<name>.json`, `<name>.md` and `<name>.png`.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flan_jax.experiments import real_data

# The order clusters are added in (the FLAN paper adds summarization, translation, ... first:
# clusters it has, in its order, then the rest); chosen before any run.
CLUSTER_ORDER = ("reading_comprehension", "sentiment", "commonsense", "closed_book_qa", "coreference")
RunJob = Callable[..., dict[str, Any]]


def real_job_runner() -> RunJob:
    """`run_real_job`, imported late (callers and tests pass a stand-in instead)."""
    from flan_jax.experiments.real_job import run_real_job

    return run_real_job


def cluster_subsets(counts: Sequence[int | None], order: Sequence[str] = CLUSTER_ORDER
                    ) -> list[dict[str, tuple[str, ...]]]:
    """held_in mappings of the first k clusters of `order` for each k (None: all of them).

        cluster_subsets([1, 2]) -> [{"reading_comprehension": ("bool_q",)},
                                    {"reading_comprehension": ("bool_q",), "sentiment": ("sst2",)}]
    """
    out = []
    for k in counts:
        chosen = order if k is None else order[:k]
        out.append({c: real_data.HELD_IN[c] for c in chosen})
    return out


def _held_out_point(summary: dict[str, Any]) -> dict[str, Any]:
    p = summary["held_out_pooled"]
    return {"after": p["after"], "after_ci95": p["after_ci95"], "before": p["before"],
            "after_minus_before": p["after_minus_before"], "n": p["n"]}


def clusters_ablation(out: str, counts: Sequence[int | None] = (1, 2, 4, None), gin_files: list[str] | None = None,
                      gin_bindings: Sequence[str] = (), run_job: RunJob | None = None) -> dict[str, Any]:
    """One tuning per cluster count (no control, no MMLU); returns {clusters: point}."""
    run_job = run_job or real_job_runner()
    points = {}
    for held_in in cluster_subsets(counts):
        k = len(held_in)
        result = run_job(str(Path(out) / f"clusters_{k}"), gin_files, [
            *gin_bindings, f"real_job_options.held_in = {held_in!r}", "real_job_options.control = None",
            "real_job_options.mmlu_per_subject = 0"])
        points[k] = {"held_in": sorted(held_in), **_held_out_point(result["summary"])}
    _write(Path(out), "clusters_ablation", points, "held-in clusters",
           "Held-out NLI (pooled) after tuning on the first k held-in clusters")
    return points


def templates_ablation(out: str, ablations: Sequence[str] = ("no_template", "dataset_name"),
                       gin_files: list[str] | None = None, gin_bindings: Sequence[str] = (),
                       run_job: RunJob | None = None) -> dict[str, Any]:
    """The job once per ablation as its control; returns {"instructions" | ablation: point}."""
    run_job = run_job or real_job_runner()
    points: dict[str, Any] = {}
    for ablation in ablations:
        result = run_job(str(Path(out) / f"templates_{ablation}"), gin_files, [
            *gin_bindings, f"real_job_options.control = {ablation!r}", "real_job_options.mmlu_per_subject = 0"])
        summary = result["summary"]
        points.setdefault("instructions", _held_out_point(summary))
        p = summary["held_out_pooled"]
        points[ablation] = {"after": p["control"], "after_ci95": p["control_ci95"], "n": p["n"],
                            "instructions_minus_this": p["after_minus_control"]}
    _write(Path(out), "templates_ablation", points, "tuned with",
           "Held-out NLI (pooled), tuned with instructions or an ablation, evaluated with instructions")
    return points


def _write(out: Path, name: str, points: dict[Any, Any], what: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(points, indent=1, default=str), encoding="utf-8")
    lines = [f"# {title}", "", f"| {what} | held-out accuracy [95%] | n |", "|---|---|---|"]
    for key, p in points.items():
        lo, hi = p["after_ci95"]
        lines.append(f"| {key} | {p['after']:.1f} [{lo:.1f}, {hi:.1f}] | {p['n']} |")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    keys = [str(k) for k in points]
    vals = [p["after"] for p in points.values()]
    err = [[p["after"] - p["after_ci95"][0] for p in points.values()],
           [p["after_ci95"][1] - p["after"] for p in points.values()]]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.errorbar(keys, vals, yerr=err, fmt="o-", capsize=3)
    ax.set_xlabel(what)
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=100)
    plt.close(fig)
