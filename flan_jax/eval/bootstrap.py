"""Bootstrap confidence intervals for evaluation scores and for the change between two runs.

A cluster's score is the mean over its tasks of each task's accuracy (FLAN 2021 reports cluster
scores this way, Section 3). The interval resamples *examples within each task* (a stratified
bootstrap: every resample keeps each task's size), recomputes the cluster score, and takes the
2.5th and 97.5th percentiles of the resampled scores (the percentile bootstrap, Efron & Tibshirani
1993, ch. 13). For the change between two runs evaluated on the same examples (before/after
tuning), the same resampled indices are applied to both runs, so the interval is that of the
paired difference.

Worked example (one task of 4 examples, 0/1 correctness, x100 scores):

    before = {"t": [1, 0, 0, 1]}   after = {"t": [1, 1, 0, 1]}
    score(before) = 50.0, score(after) = 75.0, difference = +25.0
    a resample drawing indices [1, 1, 3, 0] scores before 50.0, after 100.0, difference +50.0

The number of resamples and the seed are fixed, so a report is the same on every machine.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

NUM_RESAMPLES = 2000
SEED = 0


def _check(per_task: Mapping[str, Sequence[float]], name: str) -> dict[str, np.ndarray]:
    out = {task: np.asarray(v, dtype=np.float64) for task, v in per_task.items()}
    if not out:
        raise ValueError(f"{name}: no tasks")
    for task, v in out.items():
        if v.ndim != 1 or v.size == 0:
            raise ValueError(f"{name}: task {task!r} needs a non-empty 1-D list of per-example scores")
    return out


def _resampled_scores(per_task: Sequence[np.ndarray], num_resamples: int, seed: int) -> np.ndarray:
    """[num_resamples] cluster scores (x100) of one run; the indices depend only on the sizes."""
    rng = np.random.default_rng(seed)
    total = np.zeros(num_resamples)
    for values in per_task:
        idx = rng.integers(0, values.size, size=(num_resamples, values.size))
        total += values[idx].mean(axis=1)
    return 100.0 * total / len(per_task)


def cluster_score(per_task: Mapping[str, Sequence[float]]) -> float:
    """Mean over tasks of the per-task mean of per-example scores in [0, 1], times 100."""
    tasks = _check(per_task, "cluster_score")
    return 100.0 * float(np.mean([v.mean() for v in tasks.values()]))


def interval(per_task: Mapping[str, Sequence[float]], *, num_resamples: int = NUM_RESAMPLES,
             seed: int = SEED) -> tuple[float, float]:
    """95% percentile-bootstrap interval (x100) of `cluster_score(per_task)`."""
    tasks = _check(per_task, "interval")
    scores = _resampled_scores([tasks[t] for t in sorted(tasks)], num_resamples, seed)
    lo, hi = np.percentile(scores, [2.5, 97.5])
    return float(lo), float(hi)


def paired_difference(before: Mapping[str, Sequence[float]], after: Mapping[str, Sequence[float]],
                      *, num_resamples: int = NUM_RESAMPLES, seed: int = SEED) -> dict[str, float]:
    """The change `after - before` of the cluster score with its paired 95% interval (x100).

    `before` and `after` hold the per-example scores of the same examples in the same order.
    Returns {"difference", "low", "high"}. Raises ValueError when the tasks or sizes differ.
    """
    b, a = _check(before, "paired_difference"), _check(after, "paired_difference")
    if sorted(b) != sorted(a):
        raise ValueError(f"paired_difference: tasks differ ({sorted(b)} vs {sorted(a)})")
    for task in b:
        if b[task].size != a[task].size:
            raise ValueError(f"paired_difference: task {task!r} has {b[task].size} examples before "
                             f"and {a[task].size} after")
    order = sorted(b)
    # the same seed and sizes draw the same indices for both runs: a paired resample
    diff = (_resampled_scores([a[t] for t in order], num_resamples, seed)
            - _resampled_scores([b[t] for t in order], num_resamples, seed))
    lo, hi = np.percentile(diff, [2.5, 97.5])
    return {"difference": cluster_score(a) - cluster_score(b), "low": float(lo), "high": float(hi)}
