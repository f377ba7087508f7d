"""Local-file readers: every bad input names file:line and the reason; good files parse."""
import json

import pytest

from flan_jax.data.sources import datasources as sources
from flan_jax.data.sources.datasources import LocalFileError, read_rows
from flan_jax.errors import FlanJaxError


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_jsonl_and_tsv_rows(tmp_path):
    p = _write(tmp_path, "a.jsonl", '{"q": "Is ice cold?", "a": "yes", "extra": [1]}\n\n{"q": "x", "a": "no"}\n')
    assert read_rows(p, "jsonl", ("q", "a"), "a") == [
        {"q": "Is ice cold?", "a": "yes", "extra": [1]}, {"q": "x", "a": "no"}]
    p = _write(tmp_path, "a.tsv", "Is ice cold?\tyes\nx\tno\n")
    assert read_rows(p, "tsv", ("q", "a"), "a") == [{"q": "Is ice cold?", "a": "yes"},
                                                     {"q": "x", "a": "no"}]


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    p = _write(tmp_path, "bad.jsonl", '{"q": "a", "a": "b"}\n{"q": "a", "a": }\n')
    with pytest.raises(LocalFileError, match=rf"^{p}:2: malformed JSON"):
        read_rows(p, "jsonl", ("q", "a"))


def test_missing_field(tmp_path):
    p = _write(tmp_path, "m.jsonl", '{"q": "a", "a": "b"}\n{"q": "a", "a": "b"}\n{"q": "c"}\n')
    with pytest.raises(LocalFileError, match=rf"^{p}:3: missing required field 'a'"):
        read_rows(p, "jsonl", ("q", "a"))


def test_empty_target(tmp_path):
    p = _write(tmp_path, "e.jsonl", '{"instruction": "Say hi.", "input": "", "output": "hi"}\n'
                                    '{"instruction": "Say hi.", "input": "", "output": "  "}\n')
    with pytest.raises(LocalFileError, match=rf"^{p}:2: field 'output' must be a non-empty string, found an empty string"):
        read_rows(p, "alpaca")


def test_non_utf8_bytes(tmp_path):
    p = _write(tmp_path, "latin1.jsonl", b'{"q": "a", "a": "b"}\n{"q": "caf\xe9", "a": "b"}\n')
    with pytest.raises(LocalFileError, match=rf"^{p}:2: not UTF-8"):
        read_rows(p, "jsonl", ("q", "a"))


def test_chat_unknown_role_and_missing_assistant(tmp_path):
    good = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    bad = {"messages": [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "Hello"}]}
    p = _write(tmp_path, "c.jsonl", json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(LocalFileError, match=rf"^{p}:2: messages\[1\] has unknown role 'bot'"):
        read_rows(p, "chat")
    only_user = {"messages": [{"role": "user", "content": "Hi"}]}
    p = _write(tmp_path, "d.jsonl", json.dumps(only_user) + "\n")
    with pytest.raises(LocalFileError, match=rf"^{p}:1: no assistant turn"):
        read_rows(p, "chat")
    p = _write(tmp_path, "e.jsonl", json.dumps(good) + "\n")
    assert read_rows(p, "chat") == [good]


def test_alpaca_json_list_reports_item_line(tmp_path):
    text = ('[\n  {"instruction": "A", "input": "", "output": "a"},\n'
            '  {"instruction": "B", "output": "b"},\n  {"instruction": "C", "input": ""}\n]\n')
    p = _write(tmp_path, "al.json", text)
    with pytest.raises(LocalFileError, match=rf"^{p}:4: item 2: missing required field 'output'"):
        read_rows(p, "alpaca")
    p = _write(tmp_path, "ok.json", text.replace('"input": ""}\n]', '"output": "c"}\n]'))
    assert [r["output"] for r in read_rows(p, "alpaca")] == ["a", "b", "c"]
    p = _write(tmp_path, "broken.json", '[\n {"instruction": "A", "output": "a"}\n {"x": 1}]')
    with pytest.raises(LocalFileError, match=rf"^{p}:3: malformed JSON"):
        read_rows(p, "alpaca")


def test_tsv_wrong_cell_count(tmp_path):
    p = _write(tmp_path, "t.tsv", "a\tb\nonly one cell\n")
    with pytest.raises(LocalFileError, match=rf"^{p}:2: 1 tab-separated cells, expected 2"):
        read_rows(p, "tsv", ("q", "a"))


def test_missing_file_and_missing_data_dir(tmp_path, monkeypatch):
    with pytest.raises(LocalFileError, match="cannot read"):
        read_rows(tmp_path / "nope.jsonl", "jsonl")
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    source = sources.LocalSource("fix/{split}.jsonl", "jsonl", ("q",), how_to_obtain="Run x.")
    with pytest.raises(LocalFileError, match="FLAN_JAX_DATA_DIR. Run x."):
        sources.local_path(source, "train", None, "fix")
    assert sources.local_path(source, "train", str(tmp_path), "fix") == tmp_path / "fix/train.jsonl"


def test_errors_are_flan_jax_errors():
    assert issubclass(LocalFileError, FlanJaxError)


def test_alpaca_and_chat_fields():
    assert sources.alpaca_fields({"instruction": "Add.", "input": "2 3", "output": "5"}) == {
        "prompt": "Add.\n\n2 3", "answer": "5"}
    assert sources.alpaca_fields({"instruction": "Hi.", "output": "Hello"}) == {
        "prompt": "Hi.", "answer": "Hello"}
    row = {"messages": [{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "Hi"},
                        {"role": "assistant", "content": "Hello"},
                        {"role": "user", "content": "Bye"}]}
    assert sources.chat_fields(row) == {"conversation": "System: Be brief.\n\nUser: Hi",
                                        "answer": "Hello"}


def test_unknown_task_name_suggests_close_names():
    from flan_jax.data.tasks import registry as tasks
    from flan_jax.data.tasks import catalogue

    with pytest.raises(tasks.UnknownNameError) as info:
        catalogue.ensure_task("flan2021.rtee:zs_opt")
    assert "unknown task 'flan2021.rtee:zs_opt'; did you mean flan2021.rte:zs_opt" in str(info.value)
    with pytest.raises(tasks.UnknownNameError, match=r"did you mean .*flan2021\.anli_r1:eval"):
        catalogue.ensure_task("anli_r1")  # a bare dataset name: suggested by substring
    assert issubclass(tasks.UnknownNameError, FlanJaxError)
