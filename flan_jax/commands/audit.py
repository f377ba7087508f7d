"""`flan-jax audit MIXTURE [--eval MIXTURE] [--json] [--out FILE]`: a data-quality audit.

Reads the training split of every task of MIXTURE (and the evaluation split of every task of
`--eval`, default the same mixture's tasks on `--eval_split`) and prints the counts of exact and
near-duplicates, empty/over-long targets, length outliers and train/eval 13-gram overlaps, with
example ids. `--out` writes the whole report as JSON (flagged ids included). See flan_jax/data/audit/findings.py for the definitions.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from flan_jax.errors import FlanJaxError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mixture", help="training mixture (mixtures/*.toml) or one task name")
    parser.add_argument("--eval", dest="eval_mixture", default=None,
                        help="evaluation mixture or task (default: the training tasks)")
    parser.add_argument("--split", default="train", help="training split (default train)")
    parser.add_argument("--eval_split", default="validation", help="evaluation split")
    parser.add_argument("--max_examples", type=int, default=2000,
                        help="examples read per task and split (default 2000)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--out", default=None, help="also write the JSON report here")


def _tasks(name: str) -> list[str]:
    from flan_jax.data.mixing import mixtures  # noqa: PLC0415
    from flan_jax.data.tasks import catalogue

    if ":" in name:
        catalogue.ensure_task(name)
        return [name]
    return [leaf.task for leaf in mixtures.register_mixture(name)]


def _train_from(tasks: list[str], split: str) -> dict[str, str]:
    """Tasks whose training `split` reads packaged validation rows (docs/data.md, split policy)."""
    from flan_jax.data.tasks.listing import task_train_from  # noqa: PLC0415

    return {t: s for t in dict.fromkeys(tasks) if (s := task_train_from(t, split))}


def summary_lines(report: dict) -> list[str]:
    lines = [f"training examples read: {report['num_train']}, evaluation examples: {report['num_eval']}",
             f"exact duplicate groups: {len(report['exact_duplicates'])}",
             f"near-duplicate pairs:   {len(report['near_duplicates'])}",
             f"empty targets:          {len(report['empty_targets'])}",
             f"over the lengths:       {len(report['over_length'])}",
             f"length outliers:        {len(report['length_outliers'])}",
             f"contaminated task pairs: {len(report['contamination'])}"]
    for group in report["exact_duplicates"][:10]:
        lines.append("  duplicate: " + ", ".join(group))
    for pair in report["near_duplicates"][:10]:
        lines.append(f"  near-duplicate ({pair['jaccard']:.2f}): {pair['a']} ~ {pair['b']}")
    for c in report["contamination"]:
        first = ", ".join(f"{a} = {b}" for a, b in c["pairs"][:3])
        lines.append(f"  contamination {c['train_task']} -> {c['eval_task']}: {c['count']} ({first})")
    for task, source in report.get("train_from", {}).items():
        lines.append(f"  {task}: {report['split']} reads its packaged {source} split "
                     f"(train_from={source!r}: held-in use only)")
    lines.append(f"flagged for dropping: {len(report['flagged'])}")
    return lines


def run(args: argparse.Namespace) -> int:
    from flan_jax.data.audit import findings as audit  # noqa: PLC0415

    if args.max_examples < 1:
        raise FlanJaxError(f"--max_examples must be >= 1, got {args.max_examples}")
    train_tasks = _tasks(args.mixture)
    eval_tasks = _tasks(args.eval_mixture) if args.eval_mixture else train_tasks
    train = audit.collect(train_tasks, args.split, args.max_examples)
    if not train:
        raise FlanJaxError(f"audit: mixture {args.mixture!r} has no {args.split!r} examples")
    evaluation = audit.collect(eval_tasks, args.eval_split, args.max_examples)
    report = audit.audit(train, evaluation)
    report.update({"mixture": args.mixture, "eval": args.eval_mixture or args.mixture,
                   "split": args.split, "eval_split": args.eval_split,
                   "train_from": _train_from(train_tasks, args.split)})
    text = json.dumps(report, indent=1)
    if args.out:
        out = Path(args.out)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out)  # atomic: a failed run leaves no half-written report
    print(text if args.json else "\n".join(summary_lines(report)))
    return 0
