"""Few-shot rendering and the deterministic choices behind every rendered example.

Format
------
Each exemplar is rendered through the *same* template (and the same options setting) as the
example, written as `inputs + EXEMPLAR_IO_SEPARATOR + targets`; the exemplars and then the
example's own inputs are joined with `EXEMPLAR_SEPARATOR`. The targets are the example's own.

Worked example (template `Q: {q}{options_}` -> `{a}`, no options, k = 2):

    exemplars  [{"q": "2+2?", "a": "4"}, {"q": "3+1?", "a": "4"}]
    example    {"q": "1+1?", "a": "2"}
    inputs     "Q: 2+2?\\n4\\n\\nQ: 3+1?\\n4\\n\\nQ: 1+1?"
    targets    "2"

Pruning: while the joined inputs are longer than `max_chars` characters, the last exemplar is
dropped. With `max_chars=20` the example above keeps one exemplar,
"Q: 2+2?\\n4\\n\\nQ: 1+1?" (18 characters; 29 with both); with `max_chars=10` it keeps
none and the inputs are the zero-shot "Q: 1+1?" (never cut further here; token-level
trimming happens later).

Determinism
-----------
Which template an example uses and which exemplars it gets depend only on
(task name, seed, the example's content key), hashed with SHA-256, never on Python's `hash()`
(salted per process by PYTHONHASHSEED), on import order, or on the example's *position*: TFDS
reads files in a shuffled order when `shuffle_files=True`, and sharded readers see different
positions, so a position-based choice would change between runs. A content key does not.
Exemplars are ranked by a hash of (task, seed, example key, candidate key), so the choice does not
depend on the order of the pool either; a candidate whose key equals the example's key (the example
itself, or an exact duplicate of it) is never chosen.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from flan_jax.data.render import render
from flan_jax.data.spec import DatasetSpec, Template

EXEMPLAR_IO_SEPARATOR = "\n"
EXEMPLAR_SEPARATOR = "\n\n"

T = TypeVar("T")


def example_key(fields: Mapping[str, Any]) -> str:
    """A stable content key: SHA-256 of the fields as canonical JSON (sorted keys).

    {"b": 1, "a": "x"} and {"a": "x", "b": 1} have the same key; values JSON cannot hold
    (e.g. tuples, numpy scalars converted earlier) fall back to `str`.
    """
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_int(*parts: Any) -> int:
    """A 64-bit integer from SHA-256 of the parts joined by an ASCII unit separator."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def choose_template(task: str, seed: int, key: str, num_templates: int) -> int:
    """Template index in [0, num_templates) for one example, from (task, seed, key) only."""
    return stable_int("template", task, seed, key) % num_templates


def choose_exemplars(
    task: str, seed: int, key: str, pool: Sequence[tuple[str, T]], k: int
) -> list[T]:
    """The k pool items ranked first by hash(task, seed, key, item key), excluding `key` itself.

    `pool` holds (content key, item) pairs; its order does not matter (ties broken by the key).
    Fewer than k items come back when the pool has fewer other items.
    """
    ranked = sorted(
        (stable_int("exemplar", task, seed, key, item_key), item_key, i)
        for i, (item_key, _) in enumerate(pool)
        if item_key != key
    )
    chosen, seen = [], set()
    for _, item_key, i in ranked:
        if item_key in seen:  # duplicates in the pool count once
            continue
        seen.add(item_key)
        chosen.append(pool[i][1])
        if len(chosen) == k:
            break
    return chosen


def join_fewshot(
    exemplars: Sequence[tuple[str, str]], inputs: str, max_chars: int | None = None
) -> tuple[str, int]:
    """Joins rendered (inputs, targets) exemplars before `inputs`; returns (text, exemplars kept).

    Drops exemplars from the end until the text has at most `max_chars` characters (see the
    module docstring for a worked example).
    """
    blocks = [i + EXEMPLAR_IO_SEPARATOR + t for i, t in exemplars]
    while True:
        text = EXEMPLAR_SEPARATOR.join([*blocks, inputs])
        if max_chars is None or len(text) <= max_chars or not blocks:
            return text, len(blocks)
        blocks.pop()


def render_fewshot(
    spec: DatasetSpec,
    template_index: int,
    fields: Mapping[str, Any],
    exemplars: Sequence[Mapping[str, Any]],
    *,
    with_options: bool,
    max_chars: int | None = None,
    templates: Sequence[Template] | None = None,
) -> tuple[str, str, int]:
    """(inputs, targets, exemplars kept) of `fields` with `exemplars` in the same template."""
    inputs, targets = render(
        spec, template_index, fields, with_options=with_options, templates=templates
    )
    shots = [
        render(spec, template_index, ex, with_options=with_options, templates=templates)
        for ex in exemplars
    ]
    joined, kept = join_fewshot(shots, inputs, max_chars)
    return joined, targets, kept
