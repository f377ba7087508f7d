"""Per-item correctness grouped into subjects and categories: scores with 95% bootstrap intervals.

A benchmark of many subjects (MMLU's 57) is reported four ways: per subject, per category
(the macro average over its subjects and the micro average over its questions), and overall
(macro over all subjects, micro over all questions). Macro averages weigh every subject
equally, micro averages every question; MMLU papers differ on which they print, so both are
here. Intervals are `eval.bootstrap.interval` (percentile bootstrap resampling questions
within each subject; a micro average is resampled as one pool).

Worked example (two subjects of one category, 0/1 correctness):

    per_item = {"algebra": [1, 0, 1, 1], "physics": [0, 1]}   groups = both "STEM"
    subjects  algebra 75.0 (n 4), physics 50.0 (n 2)
    STEM      macro (75.0 + 50.0) / 2 = 62.5, micro 4 / 6 = 66.7
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from flan_jax.errors import FlanJaxError
from flan_jax.eval import bootstrap


def _entry(values: Mapping[str, np.ndarray], pooled: bool) -> dict[str, float]:
    data = {"all": np.concatenate(list(values.values()))} if pooled else dict(values)
    low, high = bootstrap.interval(data)
    return {"score": bootstrap.cluster_score(data), "low": low, "high": high}


def summarize(per_item: Mapping[str, Sequence[float]], groups: Mapping[str, str]) -> dict[str, Any]:
    """{"subjects": {s: {n, score, low, high}}, "categories": {c: {num_subjects, n, macro, micro}},
    "macro": {score, low, high}, "micro": {score, low, high}, "n": total}; scores x100.

    per_item: subject -> per-question scores in [0, 1]; groups: subject -> category. A subject
    without a category or without questions is a FlanJaxError naming it.
    """
    items = {s: np.asarray(v, np.float64).reshape(-1) for s, v in per_item.items()}
    if not items:
        raise FlanJaxError("no subjects to summarize")
    for s, v in items.items():
        if s not in groups:
            raise FlanJaxError(f"subject {s!r}: no category")
        if v.size == 0:
            raise FlanJaxError(f"subject {s!r}: no questions scored")
    subjects = {s: {"n": int(v.size), **_entry({s: v}, pooled=False)} for s, v in sorted(items.items())}
    categories: dict[str, Any] = {}
    for category in sorted(set(groups[s] for s in items)):
        members = {s: v for s, v in items.items() if groups[s] == category}
        categories[category] = {"num_subjects": len(members), "n": int(sum(v.size for v in members.values())),
                                "macro": _entry(members, pooled=False), "micro": _entry(members, pooled=True)}
    return {"subjects": subjects, "categories": categories, "macro": _entry(items, pooled=False),
            "micro": _entry(items, pooled=True), "n": int(sum(v.size for v in items.values()))}
