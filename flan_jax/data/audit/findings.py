"""Data-quality audit of rendered examples: duplicates, near-duplicates, lengths, contamination.

Input: `AuditExample`s (task, split, index, the rendered `inputs`/`targets` text and their token
counts), collected from seqio tasks by `collect()` or built directly. Output: plain dicts.

* **exact duplicates**: examples whose whitespace- and case-normalised (inputs, targets) are equal,
  within a task or across tasks. Rendering the same source row with two templates is *not* an
  exact duplicate (the texts differ); the same row in two variants of a task can be.
* **near-duplicates**: pairs whose Jaccard similarity of word 3-gram shingles is at least
  `threshold` (0.8). Candidates come from MinHash LSH (`datasketch`, 128 permutations); each
  candidate's exact Jaccard is then computed, so a reported pair really is that similar.
* **lengths**: empty targets, examples over the feature lengths (token counts), and per-task
  length outliers (a character length over 4x or under 1/4 of the task's median).
* **contamination**: training examples holding a copy of an evaluation item, whatever its
  length and however many times it was copied (its own words, in order, inside the training
  example; items under 5 words only as exact copies), and word 13-grams shared with an
  evaluation example (GPT-3's contamination analysis, Brown et al. 2020, Appendix C). Words are
  lower-cased with punctuation removed. Template text is recognised on the evaluation side (text
  that recurs across one evaluation task's examples) and never counts; a training-side count
  never hides an item's own text. Definitions and a worked example: data/audit/contamination.py.

Worked example (near-duplicate shingles):

    "the red fox ran home"  -> {"the red fox", "red fox ran", "fox ran home"}
    "the red fox ran away"  -> {"the red fox", "red fox ran", "fox ran away"}
    Jaccard = 2 / 4 = 0.5   (below 0.8: not reported)
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from flan_jax.data.audit import contamination as contamination_lib
from flan_jax.data.audit.contamination import words  # noqa: F401  (the audit's unit, public here too)

NEAR_DUP_THRESHOLD = 0.8
SHINGLE_WORDS = 3
NUM_PERM = 128
CONTAMINATION_N = contamination_lib.CONTAMINATION_N
MAX_NGRAM_EXAMPLES = contamination_lib.MAX_NGRAM_EXAMPLES
OUTLIER_FACTOR = 4.0



@dataclasses.dataclass(frozen=True)
class AuditExample:
    task: str
    split: str
    index: int  # position in the task split as read (unshuffled)
    inputs: str
    targets: str
    input_tokens: int = 0
    target_tokens: int = 0

    @property
    def id(self) -> str:
        return f"{self.task}/{self.split}/{self.index}"


def _text(ex: AuditExample) -> str:
    return ex.inputs + "\n" + ex.targets


def _normalised(ex: AuditExample) -> str:
    return " ".join(_text(ex).lower().split())


def _ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def shingles(text: str) -> set[str]:
    """Word 3-gram shingles of a text (see the module docstring's worked example)."""
    return {" ".join(g) for g in _ngrams(words(text), SHINGLE_WORDS)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def exact_duplicates(examples: Sequence[AuditExample]) -> list[list[str]]:
    """Groups (of 2 or more example ids, in input order) with the same normalised text."""
    groups: dict[str, list[str]] = defaultdict(list)
    for ex in examples:
        key = hashlib.sha256(_normalised(ex).encode()).hexdigest()
        groups[key].append(ex.id)
    return [ids for ids in groups.values() if len(ids) > 1]


def near_duplicates(examples: Sequence[AuditExample], threshold: float = NEAR_DUP_THRESHOLD,
                    num_perm: int = NUM_PERM) -> list[dict[str, Any]]:
    """Pairs {"a", "b", "jaccard"} with shingle Jaccard >= threshold that are not exact duplicates."""
    from datasketch import MinHash, MinHashLSH  # noqa: PLC0415

    sets = [shingles(_text(ex)) for ex in examples]
    normalised = [_normalised(ex) for ex in examples]
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    pairs: list[dict[str, Any]] = []
    for i, sh in enumerate(sets):
        if not sh:
            continue
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch([s.encode() for s in sh])
        for j in lsh.query(m):
            jac = jaccard(sh, sets[j])
            if jac >= threshold and normalised[i] != normalised[j]:
                pairs.append({"a": examples[j].id, "b": examples[i].id, "jaccard": round(jac, 4)})
        lsh.insert(i, m)
    return pairs


def length_report(examples: Sequence[AuditExample], lengths: Mapping[str, int] | None = None
                  ) -> dict[str, Any]:
    """Counts and ids of empty targets, over-long examples and per-task length outliers."""
    empty = [ex.id for ex in examples if not ex.targets.strip()]
    over = []
    if lengths:
        over = [ex.id for ex in examples if ex.input_tokens > lengths.get("inputs", np.inf)
                or ex.target_tokens > lengths.get("targets", np.inf)]
    by_task: dict[str, list[AuditExample]] = defaultdict(list)
    for ex in examples:
        by_task[ex.task].append(ex)
    outliers = []
    for exs in by_task.values():
        n = np.array([len(_text(e)) for e in exs], dtype=np.float64)
        ratio = n / max(float(np.median(n)), 1.0)
        outliers += [e.id for e, r in zip(exs, ratio) if r > OUTLIER_FACTOR or r < 1 / OUTLIER_FACTOR]
    return {"empty_targets": empty, "over_length": over, "length_outliers": outliers}


def contamination(train: Sequence[AuditExample], evaluation: Sequence[AuditExample],
                  n: int = CONTAMINATION_N, max_ngram_examples: int = MAX_NGRAM_EXAMPLES
                  ) -> list[dict[str, Any]]:
    """Per (training task, evaluation task): the example-id pairs where the training example
    copies the evaluation item or shares a counted n-gram with it (data/audit/contamination.py)."""
    return contamination_lib.contamination(train, evaluation, n, max_ngram_examples)


def flagged_ids(report: Mapping[str, Any]) -> set[str]:
    """Training example ids an audit flags for dropping: all but the first of each duplicate
    group, the later member of each near-duplicate pair, and contaminated training examples."""
    out = {i for group in report["exact_duplicates"] for i in group[1:]}
    out |= {p["b"] for p in report["near_duplicates"]}
    out |= {a for c in report["contamination"] for a, _ in c["pairs"]}
    return out


def audit(train: Sequence[AuditExample], evaluation: Sequence[AuditExample] = (),
          lengths: Mapping[str, int] | None = None, threshold: float = NEAR_DUP_THRESHOLD
          ) -> dict[str, Any]:
    """The whole audit of training examples (and their overlap with evaluation examples)."""
    report = {
        "num_train": len(train), "num_eval": len(evaluation),
        "exact_duplicates": exact_duplicates(train),
        "near_duplicates": near_duplicates(train, threshold),
        **length_report(train, lengths),
        "contamination": contamination(train, evaluation) if evaluation else [],
    }
    report["flagged"] = sorted(flagged_ids(report))
    return report


def collect(task_names: Iterable[str], split: str, max_examples: int | None = None
            ) -> list[AuditExample]:
    """Read registered seqio tasks' examples (unshuffled, uncached) as AuditExamples."""
    import seqio  # noqa: PLC0415

    out = []
    for name in task_names:
        task = seqio.get_mixture_or_task(name)
        if split not in task.splits:
            continue
        ds = task.get_dataset(None, split=split, shuffle=False, use_cached=False, try_in_mem_cache=False)
        if max_examples:
            ds = ds.take(max_examples)
        for i, ex in enumerate(ds.as_numpy_iterator()):
            out.append(AuditExample(
                name, split, i, ex["inputs_pretokenized"].decode("utf-8"),
                ex["targets_pretokenized"].decode("utf-8"),
                int(len(ex["inputs"])), int(len(ex["targets"]))))
    return out
