"""Local files shaped otherwise than the format: one clear line, not one per line. A JSON
document whose top level is an object; CoT TSV files with a header row naming the columns (in
any order) load, a header that names other columns is refused naming the expected ones."""
import json

import pytest

from flan_jax.data.sources.local_files import LocalFileError, read_rows, scan
from flan_jax.data.templates import cot

ROWS = [{"instruction": f"Add {i} and 1.", "input": "", "output": str(i + 1)} for i in range(6)]


@pytest.mark.parametrize("text,named", [
    (json.dumps({"data": ROWS}, indent=2), "key 'data'"),            # pretty-printed: 40 lines
    (json.dumps({"data": ROWS, "version": 2}), "keys 'data', 'version'"),  # one line, not a row
    (json.dumps(ROWS[0], indent=1), "keys 'instruction', 'input', 'output'"),  # one row, pretty-printed
])
def test_a_json_object_at_the_top_level_is_one_line(tmp_path, text, named):
    p = tmp_path / "a.json"
    p.write_text(text)
    rows, problems = scan(p, "alpaca")
    assert rows == [] and [str(e) for e in problems] == [
        f"{p}:1: the top level must be a list of objects, found an object ({named})"]
    chat = tmp_path / "c.jsonl"
    chat.write_text(text)
    (problem,) = scan(chat, "chat").problems
    assert str(problem) == f"{chat}:1: expected one JSON object per line, found one object over the whole file ({named})"


def test_json_lines_and_a_one_line_row_are_unchanged(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert read_rows(p, "alpaca") == ROWS
    p.write_text(json.dumps(ROWS[0]))
    assert read_rows(p, "alpaca") == [ROWS[0]]
    p.write_text(json.dumps({"instruction": "x"}))  # a row missing its output: named as such
    (problem,) = scan(p, "alpaca").problems
    assert "output" in str(problem) and "top level" not in str(problem)


COT = [("Is ice cold?", "yes", "Ice is frozen water."), ("2 + 2?", "4", "Two plus two is four.")]
WANT = [dict(zip(cot.COT_FIELDS, r)) for r in COT]


def _tsv(tmp_path, header):
    """The rows of WANT with their cells in the header's order (no header: the columns' order)."""
    names = [h.strip().lower() for h in header] if header else list(cot.COT_FIELDS)
    lines = ([list(header)] if header else []) + [[row[n] for n in names] for row in WANT]
    p = tmp_path / "train.tsv"
    p.write_text("".join("\t".join(cells) + "\n" for cells in lines))
    return p


@pytest.mark.parametrize("header", [None, ("question", "answer", "chain_of_thought"),
                                    ("Answer", "chain_of_thought", " Question "),
                                    ("chain_of_thought", "question", "answer")])
def test_cot_tsv_with_or_without_a_header_naming_the_columns(tmp_path, header):
    p = _tsv(tmp_path, header)
    assert read_rows(p, "tsv", cot.COT_FIELDS, "answer") == WANT


def test_a_header_naming_other_columns_is_refused_naming_the_expected_ones(tmp_path):
    p = tmp_path / "train.tsv"
    p.write_text("question\tanswer\trationale\n" + "".join("\t".join(r) + "\n" for r in COT))
    with pytest.raises(LocalFileError, match=rf"^{p}:1: looks like a header row \(question, answer, rationale\) "
                                             r"but does not name the columns question, answer, chain_of_thought"):
        read_rows(p, "tsv", cot.COT_FIELDS, "answer")


def test_an_empty_cell_under_a_reordering_header_names_its_column(tmp_path):
    p = tmp_path / "train.tsv"
    p.write_text("answer\tquestion\tchain_of_thought\nyes\t  \tIce is cold.\n")
    with pytest.raises(LocalFileError, match=rf"^{p}:2: field 'question' is empty$"):
        read_rows(p, "tsv", cot.COT_FIELDS, "answer")
