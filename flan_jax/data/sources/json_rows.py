"""Strict JSON decoding for the local-file readers (local_files.py): one value at a time, refusing
what `json.loads` would accept silently.

    _decode('{"a": 1} x', 0)        -> ({"a": 1}, 8)
    _decode_line('{"a": 1, "a": 2}') -> _RowProblem("key 'a' appears twice in one object ...")
    _json_list_items('[{"a": 1}, {"b": 2}]') -> [(1, {"a": 1}), (1, {"b": 2})]

A key given twice in one object, a value nested deeper than MAX_DEPTH levels (refused, never
recursed into) and malformed JSON raise `_RowProblem` (its message without "path:line: ";
local_files.py adds the place); `_json_list_items` returns a "line N: ..." string instead.
"""
from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 100  # JSON nesting accepted in a row; deeper values are refused, not recursed into


class _RowProblem(Exception):
    """Raised inside the JSON decoder hooks; turned into a LocalFileError with the line."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _RowProblem(f"key {key!r} appears twice in one object (JSON would keep only "
                              "the last value); remove one")
        seen[key] = value
    return seen


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys)


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > MAX_DEPTH:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _decode(text: str, pos: int = 0) -> tuple[Any, int]:
    """One JSON value from text[pos:] -> (value, end); _RowProblem on bad or hostile input."""
    try:
        value, end = _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as e:
        raise _RowProblem(f"malformed JSON ({e.msg}, column {e.colno})") from None
    except RecursionError:
        raise _RowProblem(f"malformed JSON (nested more than {MAX_DEPTH} levels deep)") from None
    if _too_deep(value):
        raise _RowProblem(f"a value is nested more than {MAX_DEPTH} levels deep")
    return value, end


def _decode_line(line: str) -> Any:
    """The one JSON value of a JSONL line (surrounding whitespace allowed)."""
    start = len(line) - len(line.lstrip())
    value, end = _decode(line, start)
    if line[end:].strip():
        raise _RowProblem(f"malformed JSON (extra data after the value, column {end + 1})")
    return value


def _json_list_items(text: str) -> list[tuple[int, Any]] | str:
    """Items of a top-level JSON list with the line each starts on, or a problem
    "line N: ..." (the list cannot be read past a syntax error)."""
    def skip(p: int) -> int:
        while p < len(text) and text[p].isspace():
            p += 1
        return p

    counted = [0, 1]  # (position, line there): positions only grow, so count incrementally
    def line_of(p: int) -> int:
        if p < counted[0]:
            return text.count("\n", 0, p) + 1
        counted[:] = [p, counted[1] + text.count("\n", counted[0], p)]
        return counted[1]

    items: list[tuple[int, Any]] = []
    pos = skip(0)
    if text[pos:pos + 1] != "[":
        return f"{line_of(pos)}: malformed JSON (expected a JSON list '[')"
    pos = skip(pos + 1)
    if text[pos:pos + 1] == "]":
        return items if not text[pos + 1:].strip() else (
            f"{line_of(skip(pos + 1))}: malformed JSON (extra data after the list)")
    while True:
        try:
            item, end = _decode(text, pos)
        except _RowProblem as e:
            return f"{line_of(pos)}: item {len(items)}: {e}"
        items.append((line_of(pos), item))
        pos = skip(end)
        if text[pos:pos + 1] == "]":
            if text[pos + 1:].strip():
                return f"{line_of(skip(pos + 1))}: malformed JSON (extra data after the list)"
            return items
        if text[pos:pos + 1] != ",":
            return f"{line_of(pos)}: malformed JSON (expected ',' or ']')"
        pos = skip(pos + 1)
