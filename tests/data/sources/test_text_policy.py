"""Text that JSON allows but a tokenizer cannot take (lone surrogates) or should not be fed
(control characters): `flan-jax check` and the training reader refuse the same rows, one line
naming file, line and field (docs/data.md, "Bad input policy")."""
import json
import re

import pytest

from flan_jax import cli
from flan_jax.data.sources import local_files, plain_text
from flan_jax.errors import FlanJaxError

GOOD = {"instruction": "Add 2 and 3.", "input": "", "output": "5"}
CHAT_OK = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}

# (raw JSON text of a field value, the code point the message must name)
BAD_VALUES = [
    (r'"ab\ud800c"', "U+D800"),          # a lone high surrogate
    (r'"\udfff"', "U+DFFF"),             # a lone low surrogate
    (r'"a\u0000b"', "U+0000"),           # NUL
    (r'"bell\u0007"', "U+0007"),
    (r'"esc\u001b[0m"', "U+001B"),
    (r'"del\u007f"', "U+007F"),
    (r'"sep\u001c"', "U+001C"),          # an information separator (not White_Space)
    (r'"csi\u009b1m"', "U+009B"),        # a C1 control
]


def _alpaca_line(field, raw):
    row = json.dumps({**GOOD, field: "PLACEHOLDER"})
    return row.replace('"PLACEHOLDER"', raw)


@pytest.mark.parametrize("raw, code", BAD_VALUES)
def test_reader_refuses_with_file_line_field(tmp_path, raw, code):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + _alpaca_line("instruction", raw) + "\n", encoding="utf-8")
    with pytest.raises(local_files.LocalFileError, match=rf"^{path}:2: field 'instruction' .*{re.escape(code)}"):
        local_files.read_rows(path, "alpaca")


def test_accepted_whitespace_and_unicode(tmp_path):
    text = "tab\there\nnew line\r\n, vt\x0b ff\x0c nel\x85, emoji 👩\u200d💻, nbsp\u00a0, zero\u200bwidth, BOM-like \ufeff"
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps({**GOOD, "input": text}) + "\n", encoding="utf-8")
    assert local_files.read_rows(path, "alpaca")[0]["input"] == text


def test_chat_turn_and_tsv_cell_are_named(tmp_path):
    chat = json.dumps(CHAT_OK).replace('"Yo"', r'"Y\u0000o"')
    path = tmp_path / "c.jsonl"
    path.write_text(chat + "\n", encoding="utf-8")
    with pytest.raises(local_files.LocalFileError, match=rf"^{path}:1: field 'messages\[1\].content' .*U\+0000"):
        local_files.read_rows(path, "chat")
    tsv = tmp_path / "q.tsv"
    tsv.write_text("Is ice cold?\tyes\nIs fire\x00 hot?\tyes\n", encoding="utf-8")
    with pytest.raises(local_files.LocalFileError, match=rf"^{tsv}:2: field 'question' .*U\+0000"):
        local_files.read_rows(tsv, "tsv", ("question", "answer"), "answer")


def test_json_list_item_and_key(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("[\n" + json.dumps(GOOD) + ",\n" + _alpaca_line("output", r'"5\ud83d"') + "\n]\n",
                    encoding="utf-8")
    with pytest.raises(local_files.LocalFileError, match=rf"^{path}:3: item 1: field 'output' .*U\+D83D"):
        local_files.read_rows(path, "alpaca")
    path = tmp_path / "k.jsonl"
    path.write_text(json.dumps(GOOD)[:-1] + r', "n\u0000te": "x"}' + "\n", encoding="utf-8")
    with pytest.raises(local_files.LocalFileError, match=rf"^{path}:1: key 'n\\x00te' .*U\+0000"):
        local_files.read_rows(path, "alpaca")


def test_check_command_and_training_agree(tmp_path, capsys):
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + _alpaca_line("instruction", r'"x\ud800"') + "\n"
                    + _alpaca_line("input", r'"\u0000"') + "\n", encoding="utf-8")
    assert cli.main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert err[0].startswith(f"{path}:2: field 'instruction'") and "U+D800" in err[0]
    assert err[1].startswith(f"{path}:3: field 'input'") and "U+0000" in err[1]
    # the training path: the registered task's reader raises the first of the same lines
    from flan_jax.data.features import pipeline
    from flan_jax.data.tasks import catalogue, registry

    catalogue.register_local_tasks("text_policy", str(path), format="alpaca", splits=("train",))
    with pytest.raises(FlanJaxError) as info:
        next(iter(pipeline.batches(registry.task_name("local", "text_policy", "zs_noopt"), "decoder",
                                   {"inputs": 32, "targets": 8}, 1, shuffle=False)))
    assert str(info.value) == err[0]


def test_plain_text_documents(tmp_path):
    txt = tmp_path / "d.txt"
    txt.write_text("first doc\n\nsecond\n doc \x00 here\n", encoding="utf-8")
    with pytest.raises(FlanJaxError, match=rf"^{txt}:4: field 'text' .*U\+0000"):
        plain_text.read_documents(txt)
    jl = tmp_path / "d.jsonl"
    jl.write_text('{"text": "ok"}\n{"text": "bad \\udc00"}\n', encoding="utf-8")
    with pytest.raises(FlanJaxError, match=rf"^{jl}:2: field 'text' .*U\+DC00"):
        plain_text.read_documents(jl)


def test_parquet_rows_get_the_same_check(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"instruction": ["ok", "bad\x00"], "output": ["a", "b"]}), path)
    with pytest.raises(local_files.LocalFileError, match=r"d\.parquet: row 1: field 'instruction' .*U\+0000"):
        local_files.read_rows(path, "alpaca")
