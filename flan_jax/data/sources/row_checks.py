"""The row checks of the local-file readers (local_files.py): what a row of each format must hold.

    _check_row({"instruction": None, "output": "x"}, "alpaca", (), None)
        -> "field 'instruction' must be a non-empty string, found null"
    _check_row(row, format, columns, target) -> None for a valid row

Each check returns None or the problem as text without "path:line: " (the reader adds the
place); `describe` names a JSON value for such messages (null, a number (NaN), a list, ...).
`_one_document` names a file that is one JSON object instead of rows.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

CHAT_ROLES = ("system", "user", "assistant")
ALPACA_COLUMNS = ("instruction", "output")  # "input" is optional


def describe(value: Any) -> str:
    """What a JSON value is, for messages: null, a number (NaN), an empty string, a list, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        shown = "NaN" if isinstance(value, float) and math.isnan(value) else repr(value)
        return f"a number ({shown})"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _string_field(row: dict[str, Any], key: str, *, required: bool = True,
                  non_empty: bool = True) -> str | None:
    """None if row[key] is fine, else the problem."""
    if key not in row:
        return f"missing required field {key!r} (has: {', '.join(sorted(row))})" if required else None
    value = row[key]
    if not isinstance(value, str) or (non_empty and not value.strip()):
        need = "a non-empty string" if non_empty else "a string"
        hint = ' (use "" for none)' if not required and value is None else ""
        return f"field {key!r} must be {need}, found {describe(value)}{hint}"
    return None


def _check_chat(row: dict[str, Any]) -> str | None:
    if "messages" not in row:
        return f"missing required field 'messages' (has: {', '.join(sorted(row))})"
    messages = row["messages"]
    if not isinstance(messages, list) or not messages:
        return f"field 'messages' must be a non-empty list of turns, found {describe(messages)}"
    for i, turn in enumerate(messages):
        at = f"messages[{i}]"
        if not isinstance(turn, dict):
            return f"{at} must be an object with 'role' and 'content', found {describe(turn)}"
        role = turn.get("role")
        if role not in CHAT_ROLES:
            return f"{at} has unknown role {role!r} (known: {', '.join(CHAT_ROLES)})"
        if "content" not in turn or not isinstance(turn["content"], str):
            return f"{at}: 'content' must be a string, found {describe(turn.get('content'))}"
        if role == "assistant" and not turn["content"].strip():
            return f"{at} is an empty assistant turn"
        if role == "system" and i > 0:
            return (f"{at} is a system turn after the first position; put the system turn "
                    "first (at messages[0])")
    assistants = [i for i, t in enumerate(messages) if t["role"] == "assistant"]
    if not assistants:
        return "no assistant turn (nothing to learn)"
    if assistants[-1] != len(messages) - 1:
        return (f"messages[{assistants[-1] + 1}] is a {messages[assistants[-1] + 1]['role']} turn "
                "after the last assistant turn (never trained on); end with an assistant turn")
    return None


def _check_row(row: Any, format: str, columns: Sequence[str], target: str | None) -> str | None:
    """None if `row` is a valid row of `format`, else the problem (without "path:line: ")."""
    if not isinstance(row, dict):
        return f"expected a JSON object, found {describe(row)}"
    if format == "chat":
        return _check_chat(row)
    if format == "alpaca":
        return (_string_field(row, "instruction")
                or _string_field(row, "input", required=False, non_empty=False)
                or _string_field(row, "output"))
    for key in columns:
        if key not in row:
            return f"missing required field {key!r} (has: {', '.join(sorted(row))})"
        if row[key] is None:
            return f"field {key!r} is null"
        if isinstance(row[key], str) and not row[key].strip():
            return f"field {key!r} is empty"
    if target is not None:
        return _string_field(row, target)
    return None


def _one_document(text: str, format: str, columns: Sequence[str], target: str | None) -> str | None:
    """The problem of a file that is a single JSON object rather than a list of objects (alpaca)
    or one object per line: a multi-line object, or a one-line object that holds a list of
    objects, none of the format's own keys and is not a valid row (`{"data": [{...}, ...]}`).
    None otherwise (the rows say what is wrong). JSON lines stop the decoder at the end of the
    first line, so this costs one line."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = json.loads(stripped)
    except (ValueError, RecursionError):  # JSON lines, malformed or too deep: the rows say which
        return None
    if not isinstance(value, dict) or not value:
        return None
    holds_rows = any(isinstance(v, list) and v and all(isinstance(x, dict) for x in v) for v in value.values())
    own_keys = {"alpaca": ALPACA_COLUMNS, "chat": ("messages",)}.get(format, tuple(columns))
    wrapper = holds_rows and not set(value) & set(own_keys) and _check_row(value, format, columns, target)
    if "\n" not in stripped and not wrapper:  # one line: a row (its own problems are named)
        return None
    keys = list(value)
    named = (f"key {keys[0]!r}" if len(keys) == 1 else
             "keys " + ", ".join(map(repr, keys[:4])) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else ""))
    if format == "alpaca":
        return f"the top level must be a list of objects, found an object ({named})"
    return f"expected one JSON object per line, found one object over the whole file ({named})"
