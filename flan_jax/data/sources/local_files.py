"""Validating readers for local data files (Alpaca JSON/JSONL, chat JSONL, JSONL, TSV), and
the rows of HF datasets files (a `*.parquet` file or a `save_to_disk` folder, arrow_files.py).

Pure Python (no TensorFlow): `scan` reads a whole file and returns every valid row and every
problem found; `read_rows` returns the rows or raises the first problem. Each problem is one
`LocalFileError` whose message starts "path:line:" and names the field, the item of a JSON list
(`item 3`) or the chat turn (`messages[2]`):

    scan("a.jsonl", "alpaca")   on   line 1 {"instruction": "Add 2 and 3.", "output": "5"}
                                     line 2 {"instruction": null, "output": "x"}
    -> Scan(rows=[(1, {"instruction": "Add 2 and 3.", "output": "5"})],
            problems=[LocalFileError("a.jsonl:2: field 'instruction' must be a non-empty
                                      string, found null")])

Bad input policy (docs/data.md, "Bad input policy"): every problem below is an error; nothing is
dropped, merged or guessed silently.

* Lines are split on "\\n" only (a trailing "\\r" is removed), not on every Unicode line
  boundary: U+2028, U+2029, U+0085 inside a JSON string stay in the text. A leading UTF-8 BOM is
  ignored.
* An empty file (or one holding only blank lines, or `[]`) has no rows: an error.
* A key given twice in one JSON object, a value nested deeper than MAX_DEPTH levels, a `null`
  or non-string where a string is needed (the message says what was found: null, a number
  (NaN), a list, ...), an empty target.
* Chat: roles system/user/assistant; a system turn only at messages[0]; the conversation ends
  with an assistant turn (a user turn after the last assistant turn would never be trained on).
* Parquet files and save_to_disk folders: their rows are checked as JSONL rows are (any
  format but tsv); a problem reads "path: row N: ..." with the file holding the row and its
  0-based index (as `ds[N]`); an unreadable, truncated or short file is one such line too.
* TSV: an optional header row naming the columns in any order (case and surrounding spaces
  ignored: "Answer<TAB>question<TAB>chain_of_thought" maps the cells by name); a first row that
  looks like a header but does not name exactly the columns (e.g. "question<TAB>answer<TAB>
  rationale") is refused; the exact number of cells, no empty cell.
* A file that is one JSON object (`{"data": [...]}`, a pretty-printed row) is one error naming
  its keys: the top level must be a list of objects (alpaca) or one object per line.
* Text a tokenizer cannot or should not take, in any string of a row (a field, a chat turn's
  content, a TSV cell, a key): a lone surrogate (U+D800..U+DFFF: JSON's "\\ud800" escape decodes
  to it, but it is not a character and has no UTF-8 form) and a control character that is not
  whitespace (C0 U+0000..U+0008 and U+000E..U+001F, DEL U+007F, C1 U+0080..U+009F except U+0085:
  "\\u0000" would be trained as a `<0x00>` byte token, an escape sequence as its bytes). Refused,
  not stripped: the file holds something other than the text its author saw. The controls that
  Unicode counts as White_Space (tab, line feed, vertical tab, form feed, carriage return, U+0085
  next line) stay text, as do format characters (zero-width joiner, U+200B, a BOM inside the
  text) and private-use characters. The message names the code point and its position:
  `a.jsonl:2: field 'input' holds control character U+0000 at character 4; ...`.
  `text_problem` is the check, shared with the plain-text reader.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from flan_jax.data.sources import arrow_files
from flan_jax.data.sources.json_rows import _decode_line, _json_list_items, _RowProblem
from flan_jax.data.sources.row_checks import _check_row, _one_document
from flan_jax.errors import FlanJaxError

FORMATS = ("jsonl", "tsv", "alpaca", "chat")
# Cells that make a first TSV row look like a header (besides the file's own column names).
HEADER_WORDS = frozenset({
    "question", "answer", "rationale", "chain_of_thought", "cot", "explanation", "input",
    "inputs", "output", "outputs", "target", "targets", "label", "instruction", "prompt",
    "response",
})


class LocalFileError(FlanJaxError):
    """A local data file is missing or has a bad line; the message starts with "path:line:"."""


class Scan(NamedTuple):
    rows: list[tuple[int, dict[str, Any]]]  # (line, row) of every valid row, in file order
    # (Parquet files and save_to_disk folders: (0-based row index, row))
    problems: list[LocalFileError]  # every problem found, in file order


# Lone surrogates and the control characters that are not Unicode White_Space (module doc); one
# C-speed search per string keeps the check linear in the text's size.
_BAD_CHARS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff]")


def without_refused_chars(text: str) -> str:
    """`text` with every character `text_problem` refuses removed (a source's stray control
    bytes, e.g. one ARC-Challenge question's "AgNO3 \x02+ NaCl" -> "AgNO3 + NaCl")."""
    return _BAD_CHARS.sub("", text)


def text_problem(text: str) -> str | None:
    """None if `text` may be tokenized, else what is wrong with it (module doc):

        "a\x00b"  -> "holds control character U+0000 at character 2; remove it (only the
                      whitespace controls tab, line feed, ... are accepted)"
        "x\ud800" -> "holds a lone surrogate U+D800 at character 2 (a broken \\u escape: not a
                      character, no UTF-8 form); fix the text"
    """
    match = _BAD_CHARS.search(text)
    if match is None:
        return None
    code = ord(match.group())
    at = match.start() + 1
    if 0xD800 <= code <= 0xDFFF:
        return (f"holds a lone surrogate U+{code:04X} at character {at} (a broken \\u escape: not "
                "a character, no UTF-8 form); fix the text")
    return (f"holds control character U+{code:04X} at character {at}; remove it (only tab, "
            "the whitespace controls tab, line feed, vertical tab, form feed, carriage return and "
            "U+0085 are accepted)")


def _row_text_problem(value: Any, where: str = "") -> str | None:
    """The first string of a row (keys included) that `text_problem` refuses, named as a field:
    field 'input', field 'messages[2].content', key 'n\x00te'."""
    stack = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return f"field {at!r} {problem}"
        elif isinstance(item, dict):
            entries = list(item.items())
            for key, _ in entries:
                problem = text_problem(key) if isinstance(key, str) else None
                if problem:
                    return f"key {key!r} {problem}"
            stack.extend((child, f"{at}.{key}" if at else key) for key, child in reversed(entries))
        elif isinstance(item, list):
            stack.extend((child, f"{at}[{i}]") for i, child in reversed(list(enumerate(item))))
    return None


def _lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) split on "\\n" only; "\\r\\n" endings lose their "\\r"."""
    return [(n, line[:-1] if line.endswith("\r") else line)
            for n, line in enumerate(text.split("\n"), start=1)]


def _scan_tsv(text: str, path: str, columns: Sequence[str]) -> Scan:
    rows, problems = [], []
    first = True
    order: list[int] | None = None  # cell positions of `columns` when a header row names them
    for line_no, line in _lines(text):
        if not line.strip():
            continue
        cells = line.split("\t")
        where = f"{path}:{line_no}"
        if first:
            first = False
            names = [c.strip().lower() for c in cells]
            wanted = [c.lower() for c in columns]
            if sorted(names) == sorted(wanted):  # a header naming the columns, in any order
                order = [names.index(c) for c in wanted]
                continue
            if set(names) and set(names) <= (HEADER_WORDS | set(wanted)):
                problems.append(LocalFileError(
                    f"{where}: looks like a header row ({', '.join(c.strip() for c in cells)}) but does "
                    f"not name the columns {', '.join(columns)} (any order): rename its cells to "
                    "those names, or delete it (without a header the cells are in that order)"))
                continue
        if len(cells) != len(columns):
            problems.append(LocalFileError(
                f"{where}: {len(cells)} tab-separated cells, expected {len(columns)} "
                f"({', '.join(columns)})"))
            continue
        if order is not None:
            cells = [cells[k] for k in order]
        empty = [c for c, cell in zip(columns, cells) if not cell.strip()]
        if empty:
            problems.append(LocalFileError(f"{where}: field {empty[0]!r} is empty"))
            continue
        row = dict(zip(columns, cells))
        problem = _row_text_problem(row)
        if problem:
            problems.append(LocalFileError(f"{where}: {problem}"))
            continue
        rows.append((line_no, row))
    return Scan(rows, problems)


def _read_text(path: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise LocalFileError(f"{path}: cannot read ({e.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise LocalFileError(
            f"{path}:{line}: not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "re-encode the file as UTF-8") from None
    return text[1:] if text.startswith("\ufeff") else text


def _scan_table(path: str, format: str, columns: Sequence[str], target: str | None) -> Scan:
    """`scan` of a Parquet file or save_to_disk folder: every row checked as a JSONL row."""
    if format == "tsv":
        raise LocalFileError(f"{path}: a Parquet file or save_to_disk folder has named columns: "
                             "read it as jsonl with `columns` (tsv is for tab-separated text)")
    try:
        located = arrow_files.read_table(path)
    except arrow_files.ArrowFileError as e:
        raise LocalFileError(str(e)) from None
    result = Scan([], [])
    for file, index, row in located:
        problem = _check_row(row, format, columns, target) or _row_text_problem(row)
        if problem:
            result.problems.append(LocalFileError(f"{file}: row {index}: {problem}"))
        else:
            result.rows.append((index, row))
    if not located:
        result.problems.append(LocalFileError(f"{path}: no rows"))
    return result


def scan(
    path: str | os.PathLike,
    format: str,
    columns: Sequence[str] = (),
    target: str | None = None,
) -> Scan:
    """Every valid row and every problem of a local file (see the module doc for the checks).

    `columns` are required keys (tsv: the column order); `target` names the field that must be
    a non-empty string (alpaca: "output"; chat checks its assistant turns instead). A file that
    cannot be read at all (missing, not UTF-8, an unknown format) raises LocalFileError.
    """
    path = str(path)
    if format not in FORMATS:
        raise LocalFileError(f"{path}: unknown format {format!r} (known: {', '.join(FORMATS)})")
    if arrow_files.is_table_path(path):
        return _scan_table(path, format, columns, target)
    text = _read_text(path)
    if format == "tsv":
        result = _scan_tsv(text, path, columns)
    else:
        document = _one_document(text, format, columns, target)
        if document is not None:
            return Scan([], [LocalFileError(f"{path}:1: {document}")])
        if format == "alpaca" and text.lstrip().startswith("["):
            items = _json_list_items(text)
            if isinstance(items, str):
                return Scan([], [LocalFileError(f"{path}:{items}")])
            numbered = [(line, f"{path}:{line}: item {i}", item, None)
                        for i, (line, item) in enumerate(items)]
        else:
            numbered = []
            for line_no, line in _lines(text):
                if line.strip():
                    try:
                        numbered.append((line_no, f"{path}:{line_no}", _decode_line(line), None))
                    except _RowProblem as e:
                        numbered.append((line_no, f"{path}:{line_no}", None, str(e)))
        result = Scan([], [])
        for line_no, where, row, problem in numbered:
            problem = problem or _check_row(row, format, columns, target) or _row_text_problem(row)
            if problem:
                result.problems.append(LocalFileError(f"{where}: {problem}"))
            else:
                result.rows.append((line_no, row))
    if not result.rows and not result.problems:
        return Scan([], [LocalFileError(f"{path}: no rows (the file is empty or holds only "
                                        "blank lines)")])
    return result


def read_rows(
    path: str | os.PathLike,
    format: str,
    columns: Sequence[str] = (),
    target: str | None = None,
) -> list[dict[str, Any]]:
    """Every row of a local file, validated; raises the first problem as LocalFileError
    ("path:line: reason"). Arguments as `scan`."""
    rows, problems = scan(path, format, columns, target)
    if problems:
        raise problems[0]
    return [row for _, row in rows]
