"""How packaged evaluation splits serve: train-from-validation, or a development / test division.

Packaged benchmark data (flan_jax.data.sources.packaged) holds validation and test splits only, so
each split's role is decided here, once, and documented in docs/data.md ("Split policy"):

* a **held-in** dataset may train on its packaged validation split: the task's `train` split then
  reads the validation rows, and reports mark it `train_from="validation"` (`TRAIN_FROM`);
* a **held-out** dataset never trains; its validation split is divided by content into a
  development part (`validation_dev`, about `DEV_FRACTION` of the rows: choosing recipes,
  prompts, checkpoints, few-shot exemplars) and a test part (`validation_test`: the reported
  number). A row is in exactly one part.

The part of a row depends only on its content: the SHA-256 of its canonical JSON (keys sorted,
no whitespace, UTF-8), read as a big-endian number and compared with `DEV_FRACTION * 2**256`.
So the partition is the same in every process and on every machine, whatever order the rows come
in, and two identical rows always land in the same part (a duplicate cannot straddle dev and
test).

Worked example (hand-checkable with `printf '%s' '{"a":1}' | sha256sum`):

    row                 {"a": 1}
    canonical JSON      '{"a":1}'
    SHA-256             015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862
    as a fraction       0x015abd7f... / 2**256 = 0.0053
    part                "dev"  (0.0053 < 0.3)
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from flan_jax.errors import FlanJaxError

# Share of a held-out validation split kept for development (the rest is the reported test part).
DEV_FRACTION = 0.3
DEV_SUFFIX, TEST_SUFFIX = "_dev", "_test"
# Task split -> the packaged split its rows come from, for splits that are not read as they are.
TRAIN_FROM = {"train": "validation"}
_SCALE = 2 ** 256


def canonical_json(row: Mapping[str, Any]) -> str:
    """{"b": [1, 2], "a": "é"} -> '{"a":"é","b":[1,2]}' (sorted keys, no spaces, non-ASCII kept).

    Raises FlanJaxError for a value JSON cannot hold (bytes, sets, NaN), naming its type."""
    try:
        return json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False)
    except (TypeError, ValueError) as e:
        raise FlanJaxError(f"split policy: row is not plain JSON ({e})") from None


def row_fraction(row: Mapping[str, Any]) -> float:
    """SHA-256 of the canonical JSON as a number in [0, 1) (see the module's worked example)."""
    digest = hashlib.sha256(canonical_json(row).encode("utf-8")).digest()
    return int.from_bytes(digest, "big") / _SCALE


def dev_test_part(row: Mapping[str, Any], dev_fraction: float = DEV_FRACTION) -> str:
    """"dev" when the row's content hash falls below `dev_fraction`, else "test"."""
    if not 0.0 < dev_fraction < 1.0:
        raise FlanJaxError(f"split policy: dev_fraction must be in (0, 1), got {dev_fraction}")
    return "dev" if row_fraction(row) < dev_fraction else "test"


def derived_splits(splits: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """The task splits a set of packaged splits serves: task split -> (packaged split, part).

    part is None (every row), "dev" or "test". A validation split gives four task splits:

        ["validation", "test"] -> {"train": ("validation", None),     # TRAIN_FROM: held-in only
                                   "validation": ("validation", None),
                                   "validation_dev": ("validation", "dev"),
                                   "validation_test": ("validation", "test"),
                                   "test": ("test", None)}
    """
    splits = list(splits)
    out: dict[str, tuple[str, str | None]] = {}
    for task_split, source_split in TRAIN_FROM.items():  # first, where TFDS has train
        if task_split not in splits and source_split in splits:
            out[task_split] = (source_split, None)
    for s in splits:
        out[s] = (s, None)
        if s == "validation":
            out[s + DEV_SUFFIX] = (s, "dev")
            out[s + TEST_SUFFIX] = (s, "test")
    return out


def train_from(split: str, packaged_splits: Iterable[str]) -> str | None:
    """The packaged split a task's `split` trains from when it is not its own split:
    ("train", ["validation"]) -> "validation"; ("train", ["train", "validation"]) -> None."""
    packaged_splits = list(packaged_splits)
    source = TRAIN_FROM.get(split)
    if source is None or split in packaged_splits or source not in packaged_splits:
        return None
    return source
