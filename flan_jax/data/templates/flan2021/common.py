"""Tiny helpers shared by the FLAN 2021 cluster modules (kept small and stable).

    pick_label(("no", "yes"), 1)   -> "yes"
    pick_label(("no", "yes"), -1)  -> None   (unlabeled test rows are dropped)
    first_text(["Paris", "paris"]) -> "Paris"
    first_text([])                 -> None
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Common fixed option sets, so clusters spell them the same way.
YES_NO: tuple[str, ...] = ("yes", "no")
YES_MAYBE_NO: tuple[str, ...] = ("yes", "it is not possible to tell", "no")


def pick_label(names: Sequence[str], index: Any) -> str | None:
    """Class index -> its option text; None for -1 (unlabeled) or any out-of-range index."""
    try:
        i = int(index)
    except (TypeError, ValueError):
        return None
    if 0 <= i < len(names):
        return names[i]
    return None


def first_text(values: Sequence[Any]) -> str | None:
    """The first non-empty string of a list of reference answers; None when there is none."""
    for v in values:
        if isinstance(v, str) and v.strip():
            return v
    return None
