"""Shared plumbing of the flan-nl cluster modules: candidate pools, content splits, sampling.

A flan-nl dataset is a *pool* of candidate rows built by code from hand-written word lists with a
fixed seed, cut into splits **by content**: each row's content key (the text that identifies the
question, e.g. premise + hypothesis, or the question with its set of choices; not the order the
choices are shown in) is hashed with CRC32, and the hash picks the split:

    crc32("flan_nl/<dataset>/<key>") % 20:  0-13 -> train, 14-16 -> validation, 17-19 -> test

so no content key is in two splits, in any process or machine (CRC32, not Python's `hash`).
A split of n rows is then drawn from its part of the pool with `random.Random(split seed)`,
stratified by label (the answer, or the answer's position for datasets with per-example
choices): every block of k rows holds each of the k labels once, in a random order, so any
prefix of a split is balanced to within one row per label, and `generate(seed, m)` is the first
m rows of `generate(seed, n)` for m < n (as flan-mini's generators).
Eval splits never repeat a row; train repeats rows only when its pool part is smaller than n.

    gen = SplitGenerator("nl_antonym", candidates, key, label)
    gen(split_seed("nl_antonym", "test"), 5)   -> 5 rows of the test part, the same everywhere
"""
from __future__ import annotations

import dataclasses
import functools
import random
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from flan_jax.data.templates.spec import DatasetSpec, Fields, ProceduralSource, Template
from flan_jax.errors import FlanJaxError

SPLITS: tuple[str, ...] = ("train", "validation", "test")
# Every cluster has 3 datasets, so 600 test rows per cluster (the issue asks >= 400 for the
# reported figure); a pool part of 15% then needs >= 67 distinct rows per label (4 labels).
SPLIT_SIZES: dict[str, int] = {"train": 2000, "validation": 200, "test": 200}
_BUCKETS = 20
_SPLIT_OF_BUCKET = ("train",) * 14 + ("validation",) * 3 + ("test",) * 3


class UnknownSplitSeedError(FlanJaxError):
    """`generate` was called with a seed that is none of the dataset's split seeds."""


def split_seed(dataset: str, split: str) -> int:
    """A stable 32-bit seed for one split of one dataset."""
    return zlib.crc32(f"flan_nl/{dataset}/{split}".encode("utf-8"))


def split_of_key(dataset: str, key: str) -> str:
    """The split a content key belongs to ("train", "validation" or "test")."""
    return _SPLIT_OF_BUCKET[zlib.crc32(f"flan_nl/{dataset}/{key}".encode("utf-8")) % _BUCKETS]


def pick_choices(rng: random.Random, answer: str, distractors: Sequence[str], k: int) -> list[str]:
    """`answer` plus k - 1 distinct distractors (never equal to it), in a random order."""
    pool = sorted(set(distractors) - {answer})
    choices = [answer, *rng.sample(pool, k - 1)]
    rng.shuffle(choices)
    return choices


def choices_key(question: str, choices: Sequence[str]) -> str:
    """Content key of a multiple-choice row: the question and its *set* of choices."""
    return question + " || " + " | ".join(sorted(choices))


@dataclasses.dataclass(frozen=True)
class SplitGenerator:
    """`generate(seed, n)` of a ProceduralSource: n rows of the split whose seed is `seed`.

    candidates(rng) -> rows (duplicates by key are dropped, first kept); key(row) -> content key;
    label(row) -> the stratification label.
    """

    dataset: str
    candidates: Callable[[random.Random], list[Fields]]
    key: Callable[[Fields], str]
    label: Callable[[Fields], str]

    def __call__(self, seed: int, n: int) -> list[Fields]:
        by_seed = {split_seed(self.dataset, s): s for s in SPLITS}
        if seed not in by_seed:
            raise UnknownSplitSeedError(
                f"flan-nl dataset {self.dataset!r}: seed {seed} is not a split seed "
                f"(use source.split_seeds[split])")
        split = by_seed[seed]
        groups = _split_pools(self)[split]
        rng = random.Random(seed)
        labels = sorted(groups)
        order = {lab: rng.sample(range(len(groups[lab])), len(groups[lab])) for lab in labels}
        rows, used, block = [], {lab: 0 for lab in labels}, []
        for _ in range(n):
            if not block:  # labels in a fresh random order every len(labels) rows
                block = rng.sample(labels, len(labels))
            lab = block.pop()
            if used[lab] == len(order[lab]):
                if split != "train":
                    raise FlanJaxError(f"flan-nl dataset {self.dataset!r}: {split} pool of label "
                                       f"{lab!r} has only {len(order[lab])} rows, {n} asked")
                used[lab] = 0
            rows.append(groups[lab][order[lab][used[lab]]])
            used[lab] += 1
        return [_copy(r) for r in rows]


def _copy(row: Fields) -> Fields:
    return {k: list(v) if isinstance(v, list) else v for k, v in row.items()}


@functools.lru_cache(maxsize=None)
def _split_pools(gen: SplitGenerator) -> dict[str, dict[str, list[Fields]]]:
    """split -> label -> rows, from the dataset's fixed-seed candidate pool (computed once)."""
    rng = random.Random(zlib.crc32(f"flan_nl/{gen.dataset}/pool".encode("utf-8")))
    seen: set[str] = set()
    out: dict[str, dict[str, list[Fields]]] = {s: {} for s in SPLITS}
    for row in gen.candidates(rng):
        key = gen.key(row)
        if key in seen:
            continue
        seen.add(key)
        out[split_of_key(gen.dataset, key)].setdefault(gen.label(row), []).append(row)
    return out


def answer_label(row: Fields) -> str:
    return str(row["answer"])


def position_label(row: Fields) -> str:
    """The answer's position among the row's choices (balances first/second/... answers)."""
    return str(row["choices"].index(row["answer"]))


def nl_dataset(
    name: str,
    cluster: str,
    candidates: Callable[[random.Random], list[Fields]],
    key: Callable[[Fields], str],
    fields: tuple[str, ...],
    templates: tuple[Template, ...],
    description: str,
    **kwargs: Any,
) -> DatasetSpec:
    """A flan-nl DatasetSpec with one procedural source named like the dataset.

    Datasets with per-example choices (`options_field="choices"`) are stratified by the answer's
    position, the others by the answer.
    """
    label = position_label if kwargs.get("options_field") else answer_label
    source = ProceduralSource(
        generate=SplitGenerator(name, candidates, key, label),
        split_sizes=dict(SPLIT_SIZES),
        split_seeds={split: split_seed(name, split) for split in SPLITS},
    )
    return DatasetSpec(
        name=name, cluster=cluster, sources={name: source}, to_fields=dict, fields=fields,
        templates=templates, description=description, **kwargs,
    )
