"""A mixture option that drops the examples an audit flags (data/audit/findings.py), with counts.

    [mixture.flan_mini_clean]
    include = [{ collection = "flan_mini", variants = ["zs_noopt"] }]
    drop_flagged = ["duplicates", "near_duplicates", "contaminated"]   # any subset (DROP_KINDS)
    audit_eval = "flan_mini_eval"     # mixture or task whose `audit_eval_split` defines contamination
    audit_eval_split = "validation"   # default

When such a mixture is registered, every training example of its leaf tasks is read once
(unshuffled) and audited; each leaf task is then replaced in the seqio mixture by
`<task>#audited`, the same examples minus the flagged positions. What is flagged (audit.py):

    duplicates       all but the first of each exact-duplicate group (within or across tasks)
    near_duplicates  the later member of each near-duplicate pair (shingle Jaccard >= 0.8)
    contaminated     training examples sharing a counted 13-gram with an `audit_eval` example

Worked example: task t reads [a, b, a', c, e] where a' duplicates a and e copies an evaluation
example; drop_flagged = ["duplicates", "contaminated"] -> `t#audited` reads [a, b, c] and the
counts are {"audited": 5, "duplicates": 1, "near_duplicates": 0, "contaminated": 1,
"dropped": 2} ("dropped" counts each example once, whatever flagged it).

The counts ride on the mixture's leaves (`Leaf.dropped`) and train() reports their sums with
the data pipeline's statistics (`data/audit_*` in TensorBoard and the "data step" log line).
Positions are those of an unshuffled read, which is deterministic for every source flan_jax
reads (TFDS splits, local files, procedural data; renderings are content-seeded).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flan_jax.data.audit import findings as audit

DROP_KINDS = ("duplicates", "near_duplicates", "contaminated")
SUFFIX = "#audited"  # seqio task names allow '#': `flan_mini.mini_add:zs_noopt#audited`


def flagged_by_kind(report: Mapping[str, Any]) -> dict[str, set[str]]:
    """Example ids per kind of flag (the rule of `audit.flagged_ids`, split by kind)."""
    return {"duplicates": {i for group in report["exact_duplicates"] for i in group[1:]},
            "near_duplicates": {p["b"] for p in report["near_duplicates"]},
            "contaminated": {a for c in report["contamination"] for a, _ in c["pairs"]}}


def drop_counts(examples: Sequence[audit.AuditExample], evaluation: Sequence[audit.AuditExample],
                kinds: Sequence[str]) -> tuple[dict[str, dict[str, int]], dict[str, list[int]]]:
    """({task: counts}, {task: sorted dropped positions}) for the chosen kinds of flag."""
    report = audit.audit(examples, evaluation)
    flagged = flagged_by_kind(report)
    dropped_ids = set().union(*(flagged[k] for k in kinds)) if kinds else set()
    counts: dict[str, dict[str, int]] = {}
    positions: dict[str, list[int]] = {}
    for ex in examples:
        c = counts.setdefault(ex.task, {"audited": 0, **{k: 0 for k in DROP_KINDS}, "dropped": 0})
        positions.setdefault(ex.task, [])
        c["audited"] += 1
        for k in kinds:
            c[k] += ex.id in flagged[k]
        if ex.id in dropped_ids:
            c["dropped"] += 1
            positions[ex.task].append(ex.index)
    return counts, positions


def register_filtered_task(task: str, drop: Sequence[int], split: str = "train") -> str:
    """Register `<task>#audited`: `task`'s `split` read unshuffled, without positions `drop`."""
    import seqio  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    name = task + SUFFIX
    original = seqio.get_mixture_or_task(task)
    dropped = tf.constant(sorted(set(drop)) or [-1], tf.int64)

    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        ds = original.get_dataset(None, split=split, shuffle=False, use_cached=False,
                                  try_in_mem_cache=False)
        ds = ds.enumerate().filter(lambda i, ex: tf.logical_not(tf.reduce_any(tf.equal(i, dropped))))
        return ds.map(lambda i, ex: ex)

    if name in seqio.TaskRegistry.names():
        seqio.TaskRegistry.remove(name)
    seqio.TaskRegistry.add(name, source=seqio.FunctionDataSource(dataset_fn, splits=(split,)),
                           preprocessors=[], output_features=original.output_features,
                           postprocess_fn=original.postprocessor, metric_fns=original.metric_fns)
    return name


def apply(task_names: Sequence[str], eval_task_names: Sequence[str], kinds: Sequence[str],
          eval_split: str = "validation", split: str = "train"
          ) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Audit `task_names` (all their `split` examples), register the filtered tasks.

    Returns ({task: filtered task name}, {task: counts}).
    """
    examples = audit.collect(task_names, split)
    evaluation = audit.collect(eval_task_names, eval_split) if "contaminated" in kinds else []
    counts, positions = drop_counts(examples, evaluation, kinds)
    names = {t: register_filtered_task(t, positions.get(t, ()), split) for t in task_names}
    empty = {"audited": 0, **{k: 0 for k in DROP_KINDS}, "dropped": 0}
    return names, {t: counts.get(t, dict(empty)) for t in task_names}


def totals(leaves: Sequence[Any]) -> dict[str, int]:
    """Sums of the leaves' counts as `audit_<kind>` (empty when no leaf was audited)."""
    out: dict[str, int] = {}
    for leaf in leaves:
        for k, v in (getattr(leaf, "dropped", None) or {}).items():
            out[f"audit_{k}"] = out.get(f"audit_{k}", 0) + int(v)
    return out
