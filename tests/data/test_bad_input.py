"""One test per kind of bad local file (project issue 13): each gives one LocalFileError naming
path:line and the field / item / messages[i]; the right value where there is one."""
import json

import pytest

from flan_jax.data.templates import cot
from flan_jax.data.sources.json_rows import MAX_DEPTH
from flan_jax.data.sources.local_files import LocalFileError, read_rows, scan

ALPACA = {"instruction": "Add 2 and 3.", "input": "", "output": "5"}


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def _lines(*rows):
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


@pytest.mark.parametrize("field, value, found", [
    ("instruction", None, "null"),
    ("output", None, "null"),
    ("input", None, 'null (use "" for none)'),
    ("output", 3, "a number (3)"),
    ("output", [1], "a list"),
    ("instruction", {"a": 1}, "an object"),
])
def test_alpaca_field_of_the_wrong_type_names_field_and_type(tmp_path, field, value, found):
    p = _write(tmp_path, "a.jsonl", _lines(ALPACA, {**ALPACA, field: value}))
    with pytest.raises(LocalFileError) as info:
        read_rows(p, "alpaca")
    assert str(info.value) == f"{p}:2: field {field!r} must be a {'non-empty ' if field != 'input' else ''}string, found {found}"


def test_nan_literal_output_is_reported_as_a_number(tmp_path):
    p = _write(tmp_path, "n.jsonl", '{"instruction": "x", "output": NaN}\n')
    with pytest.raises(LocalFileError, match=rf"^{p}:1: field 'output' must be a non-empty string, found a number \(NaN\)$"):
        read_rows(p, "alpaca")


def test_null_in_a_required_jsonl_column(tmp_path):
    p = _write(tmp_path, "q.jsonl", '{"q": "a", "a": "b"}\n{"q": null, "a": "b"}\n')
    with pytest.raises(LocalFileError, match=rf"^{p}:2: field 'q' is null$"):
        read_rows(p, "jsonl", ("q", "a"), "a")


@pytest.mark.parametrize("text", ["", "\n\n  \n", "[]\n", "\ufeff"])
@pytest.mark.parametrize("format", ["alpaca", "chat", "tsv"])
def test_empty_file_is_an_error(tmp_path, text, format):
    if format != "alpaca" and text.startswith("["):
        pytest.skip("a JSON list is an Alpaca form only")
    p = _write(tmp_path, "e.txt", text)
    with pytest.raises(LocalFileError, match=rf"^{p}: no rows \(the file is empty"):
        read_rows(p, format, cot.COT_FIELDS if format == "tsv" else ())


def test_duplicate_key_names_line_and_key(tmp_path):
    p = _write(tmp_path, "d.jsonl", _lines(ALPACA, '{"instruction": "x", "output": "a", "output": "b"}'))
    with pytest.raises(LocalFileError, match=rf"^{p}:2: key 'output' appears twice in one object"):
        read_rows(p, "alpaca")
    nested = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    line = json.dumps(nested).replace('"content": "a"', '"content": "a", "content": "c"')
    p = _write(tmp_path, "c.jsonl", line + "\n")
    with pytest.raises(LocalFileError, match=rf"^{p}:1: key 'content' appears twice"):
        read_rows(p, "chat")


@pytest.mark.parametrize("depth", [50_000, MAX_DEPTH + 1])
def test_deep_nesting_is_refused_without_recursion_error(tmp_path, depth):
    deep = "[" * depth + "]" * depth
    p = _write(tmp_path, "deep.jsonl", _lines(ALPACA, f'{{"instruction": "x", "output": "y", "meta": {deep}}}'))
    with pytest.raises(LocalFileError, match=rf"^{p}:2: .*nested more than {MAX_DEPTH} levels deep"):
        read_rows(p, "alpaca")
    ok = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)  # the row object is level 1
    p = _write(tmp_path, "ok.jsonl", f'{{"instruction": "x", "output": "y", "meta": {ok}}}\n')
    assert len(read_rows(p, "alpaca")) == 1


def test_json_list_non_object_item_names_item_index(tmp_path):
    p = _write(tmp_path, "l.json", '[\n  {"instruction": "A", "output": "a"},\n  "oops",\n  3\n]\n')
    result = scan(p, "alpaca")
    assert [str(e) for e in result.problems] == [
        f"{p}:3: item 1: expected a JSON object, found a string",
        f"{p}:4: item 2: expected a JSON object, found a number (3)"]
    assert [line for line, _ in result.rows] == [2]


def _chat(*turns):
    return {"messages": [{"role": r, "content": c} for r, c in turns]}


def test_chat_user_turn_after_last_assistant_names_the_turn(tmp_path):
    p = _write(tmp_path, "c.jsonl", _lines(_chat(("user", "Hi"), ("assistant", "Yo"), ("user", "Bye"))))
    with pytest.raises(LocalFileError, match=rf"^{p}:1: messages\[2\] is a user turn after the last assistant turn"):
        read_rows(p, "chat")


def test_chat_system_turn_after_first_position_names_the_turn(tmp_path):
    p = _write(tmp_path, "c.jsonl", _lines(
        _chat(("system", "Be brief."), ("user", "Hi"), ("assistant", "Yo")),
        _chat(("user", "Hi"), ("system", "Be brief."), ("assistant", "Yo"))))
    with pytest.raises(LocalFileError, match=rf"^{p}:2: messages\[1\] is a system turn after the first position"):
        read_rows(p, "chat")


def _tsv(*rows):
    return "".join("\t".join(r) + "\n" for r in rows)


COT_ROWS = [("Is ice cold?", "yes", "Ice is frozen water, below 0 C."),
            ("Is fire cold?", "no", "Fire is hot."),
            ("2 + 2?", "4", "Two plus two is four."),
            ("Is the sky green?", "no", "The sky looks blue.")]


# a header naming the columns (any order) is accepted: tests/data/sources/test_local_file_shapes.py
@pytest.mark.parametrize("header", [("question", "answer", "rationale"),
                                    ("Question", "Answer", "explanation")])
def test_cot_tsv_header_row_is_refused_not_rendered(tmp_path, header):
    p = _write(tmp_path, "train.tsv", _tsv(header, *COT_ROWS))
    with pytest.raises(LocalFileError, match=rf"^{p}:1: looks like a header row"):
        read_rows(p, "tsv", cot.COT_FIELDS, "answer")
    p = _write(tmp_path, "ok.tsv", _tsv(*COT_ROWS))
    assert len(read_rows(p, "tsv", cot.COT_FIELDS, "answer")) == 4


def test_cot_tsv_empty_field_names_line_and_field(tmp_path):
    rows = [*COT_ROWS[:2], ("Q?", "yes", "  "), *COT_ROWS[2:]]
    p = _write(tmp_path, "train.tsv", _tsv(*rows))
    with pytest.raises(LocalFileError, match=rf"^{p}:3: field 'chain_of_thought' is empty$"):
        read_rows(p, "tsv", cot.COT_FIELDS, "answer")


# (U+001C, a line boundary to str.splitlines but not Unicode White_Space, is refused as a control
# character: tests/data/sources/test_text_policy.py)
@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c"])
def test_unicode_line_boundaries_inside_text_stay_in_one_row(tmp_path, char):
    row = {"instruction": f"Join{char}these", "input": "", "output": f"a{char}b"}
    p = _write(tmp_path, "u.jsonl", json.dumps(row, ensure_ascii=False) + "\r\n")
    assert read_rows(p, "alpaca") == [row]
    chat = _chat(("user", f"x{char}y"), ("assistant", f"z{char}w"))
    p = _write(tmp_path, "u_chat.jsonl", json.dumps(chat, ensure_ascii=False) + "\n")
    assert read_rows(p, "chat") == [chat]
    p = _write(tmp_path, "u.tsv", f"Q{char}?\tyes\tbecause{char}so\n")
    assert read_rows(p, "tsv", cot.COT_FIELDS) == [
        {"question": f"Q{char}?", "answer": "yes", "chain_of_thought": f"because{char}so"}]


def test_scan_reports_every_problem_with_counts(tmp_path):
    p = _write(tmp_path, "m.jsonl", _lines(ALPACA, {"instruction": None, "output": "x"}, "{bad",
                                           ALPACA, {"instruction": "x", "output": 3}))
    result = scan(p, "alpaca")
    assert [line for line, _ in result.rows] == [1, 4]
    assert [str(e).split(": ")[0] for e in result.problems] == [f"{p}:2", f"{p}:3", f"{p}:5"]


def test_json_list_lines_stay_right_deep_into_a_long_list_and_trailing_data_is_refused(tmp_path):
    items = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(300)]
    text = "[\n" + ",\n".join("  " + json.dumps(it) if i != 250 else "  7" for i, it in enumerate(items)) + "\n]\n"
    p = _write(tmp_path, "long.json", text)
    result = scan(p, "alpaca")
    assert [str(e) for e in result.problems] == [f"{p}:252: item 250: expected a JSON object, found a number (7)"]
    assert result.rows[-1][0] == 301 and len(result.rows) == 299
    p = _write(tmp_path, "tail.json", '[{"instruction": "a", "output": "b"}]\n\nxx\n')
    with pytest.raises(LocalFileError, match=rf"^{p}:3: malformed JSON \(extra data after the list\)"):
        read_rows(p, "alpaca")
