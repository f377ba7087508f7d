"""`flan-jax check FILE|TASK`: every problem at once with counts; the loss-mask view marks exactly
the target tokens (checked against the vocabulary's own encoding of the file's text)."""
import json

import pytest

from flan_jax import cli
from flan_jax.commands import check as check_cmd
from flan_jax.data.mixing import mixtures


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_every_problem_of_a_file_at_once_with_counts(tmp_path, capsys):
    p = _write(tmp_path / "data.jsonl", [{"instruction": "Add 2 and 3.", "output": "5"},
                          {"instruction": None, "output": "x"},
                          {"instruction": "a", "output": 3},
                          {"instruction": "b", "output": "ok"}])
    assert cli.main(["check", str(p)]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"{p}:2: field 'instruction' must be a non-empty string, found null",
        f"{p}:3: field 'output' must be a non-empty string, found a number (3)"]
    assert out.strip() == f"{p}: alpaca file, 4 rows: 2 valid, 2 with problems"


@pytest.mark.parametrize("name, first, expected", [
    ("a.tsv", "q\ta\tb", "cot"), ("a.json", "[]", "alpaca"),
    ("a.jsonl", '{"messages": []}', "chat"), ("a.jsonl", '{"instruction": "x"}', "alpaca"),
    ("a.jsonl", '{"question": "q", "chain_of_thought": "c"}', "cot"),
])
def test_format_is_guessed_from_name_and_first_row(tmp_path, name, first, expected):
    path = tmp_path / name
    path.write_text(first + "\n")
    assert check_cmd.guess_format(path) == expected


def test_unknown_format_and_unknown_target_are_one_line_errors(tmp_path, capsys):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n')
    assert cli.main(["check", str(path)]) == 2
    assert "cannot tell the file's format" in capsys.readouterr().err
    assert cli.main(["check", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such file, and not a task name" in capsys.readouterr().err
    assert cli.main(["check", str(path), "--split", "validation"]) == 2
    assert "--split is for task names" in capsys.readouterr().err


def test_marked_tokens():
    assert check_cmd.marked_tokens(["▁Add", "▁5", "</s>", "▁x", "▁y"], [0, 1, 1, 0, 1]) == \
        "▁Add ⟦▁5 </s>⟧ ▁x ⟦▁y⟧"


def _segments(row):
    """{segment id: (ids with weight 0, ids with weight 1)} of a packed decoder row."""
    out = {}
    for tok, w, s in zip(row["decoder_target_tokens"], row["decoder_loss_weights"],
                         row["decoder_segment_ids"]):
        if s:
            out.setdefault(s, ([], []))[w].append(tok)
    return out


@pytest.mark.slow
def test_loss_mask_view_marks_exactly_the_targets(tmp_path, capsys):
    from flan_jax.data.features.vocab import default_vocabulary

    rows = [{"instruction": "Add 2 and 3.", "input": "", "output": "5"},
            {"instruction": "Name a colour.", "input": "", "output": "Blue\u2028or red"}]
    p = _write(tmp_path / "mine.jsonl", rows)
    before = p.read_bytes()
    assert cli.main(["check", str(p), "--json", "--lengths", "32,16"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 2 and report["valid"] == 2 and report["problems"] == []
    assert [e["targets"] for e in report["examples"]] == ["5", "Blue\u2028or red"]  # one row each
    vocab = default_vocabulary()
    expected = sorted((vocab.encode(r["instruction"]), vocab.encode(r["output"]) + [1]) for r in rows)
    got = sorted(tuple(v) for v in _segments(report["packed_row"]).values())
    assert got == [tuple(e) for e in expected]  # both examples packed in one row, only targets weighted
    assert p.read_bytes() == before


@pytest.mark.slow
def test_loss_mask_view_of_a_chat_template(tmp_path, capsys):
    from flan_jax.data.features.vocab import default_vocabulary

    chat = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"},
                         {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Ciao"}]}
    p = _write(tmp_path / "talk.jsonl", [chat])
    # the flan-mini vocabulary has no <|im_start|> token: refused in one line unless the markup
    # is trained as text on purpose
    assert cli.main(["check", str(p), "--chat_template", "chatml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "chat template 'chatml': '<|im_start|>' is not one token" in err[0]
    assert cli.main(["check", str(p), "--chat_template", "chatml", "--chat_markup", "text", "--json",
                     "--lengths", "64,160"]) == 0
    report = json.loads(capsys.readouterr().out)
    vocab = default_vocabulary()
    end = vocab.encode("<|im_end|>")
    (_, weighted), = _segments(report["packed_row"]).values()
    assert weighted == vocab.encode("Yo") + end + vocab.encode("Ciao") + end
    out_text = capsys.readouterr().out
    assert cli.main(["check", str(p), "--chat_template", "chatml", "--chat_markup", "text",
                     "--lengths", "64,64"]) == 0
    out_text = capsys.readouterr().out
    assert "carry loss" in out_text and "⟦" in out_text


@pytest.mark.slow
@pytest.mark.parametrize("format, columns, line, expected", [
    ("tsv", ["question", "answer"], "Is ice cold?\tyes", ("Is ice cold?", "yes")),
    ("jsonl", ["q", "ctx", "a"], '{"q": "Who?", "ctx": "Ann ran.", "a": "Ann"}', ("Who?\n\nAnn ran.", "Ann")),
    ("cot", [], "Is ice cold?\tyes\tIce is frozen water.", None),
])
def test_every_local_format_is_reachable_from_an_added_mixture_file(
        tmp_path, monkeypatch, format, columns, line, expected):
    import seqio

    suffix = "tsv" if format in ("tsv", "cot") else "jsonl"
    (tmp_path / "data" / "mine").mkdir(parents=True)
    (tmp_path / "data" / "mine" / f"train.{suffix}").write_text(line + "\n")
    (tmp_path / "mix").mkdir()
    (tmp_path / "mix" / "mine.toml").write_text(
        f'[local.mine_{format}]\nfile_pattern = "mine/{{split}}.{suffix}"\nformat = "{format}"\n'
        f"columns = {json.dumps(columns)}\nsplits = [\"train\"]\n\n"
        f'[mixture.my_mix_{format}]\nrate = "equal"\ninclude = [{{ local = "mine_{format}" }}]\n')
    monkeypatch.delenv(mixtures.MIXTURES_DIR_ENV, raising=False)
    monkeypatch.setenv(mixtures.MIXTURES_PATH_ENV, str(tmp_path / "mix"))
    decls, _ = mixtures.load_files()
    assert f"my_mix_{format}" in decls and "flan_mini_all" in decls  # added, not replaced
    leaves = mixtures.register_mixture(f"my_mix_{format}", vocabulary=seqio.ByteVocabulary(),
                                       data_dir=str(tmp_path / "data"))
    (leaf,) = leaves
    ex = next(seqio.get_mixture_or_task(leaf.task).get_dataset(
        None, split="train", shuffle=False).as_numpy_iterator())
    got = (ex["inputs_pretokenized"].decode(), ex["targets_pretokenized"].decode())
    if expected:
        assert got == expected
    else:  # one of the CoT collection's chain-of-thought templates (hash-chosen)
        from flan_jax.data.templates import cot
        from flan_jax.data.templates.render import render

        spec = cot.local_cot_spec("mine_cot", "x.tsv")
        fields = {"question": "Is ice cold?", "answer": "yes", "chain_of_thought": "Ice is frozen water."}
        renders = {tuple(render(spec, i, fields, with_options=False, templates=spec.cot_templates))
                   for i in range(len(spec.cot_templates))}
        assert got in renders


def test_missing_added_mixture_folder_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(mixtures.MIXTURES_PATH_ENV, str(tmp_path / "nope"))
    with pytest.raises(mixtures.MixtureError, match=rf"^{tmp_path / 'nope'}: not a directory"):
        mixtures.load_files()


@pytest.mark.slow
def test_loss_mask_view_of_a_task(capsys):
    from flan_jax.data.features.vocab import default_vocabulary

    assert cli.main(["check", "flan_mini.mini_add:zs_noopt", "--json", "-n", "0",
                     "--lengths", "48,16"]) == 0
    report = json.loads(capsys.readouterr().out)
    row = report["packed_row"]
    vocab = default_vocabulary()
    segments = {}
    for tok, w, s in zip(row["decoder_target_tokens"], row["decoder_loss_weights"],
                         row["decoder_segment_ids"]):
        if s:
            segments.setdefault(s, []).append((tok, w))
    assert len(segments) >= 2  # packed
    for pairs in segments.values():
        weights = [w for _, w in pairs]
        k = weights.index(1)
        assert weights == [0] * k + [1] * (len(weights) - k)  # inputs untrained, targets trained
        target = [t for t, w in pairs if w]
        assert target[-1] == 1 and vocab.decode(target[:-1]).strip().lstrip("-").isdigit()


def test_mixtures_path_flag_adds_to_the_shipped_mixtures(tmp_path, monkeypatch, capsys):
    (tmp_path / "mine.toml").write_text(
        '[mixture.my_added_mix]\ndescription = "mine"\nrate = "equal"\n'
        'include = [{ task = "flan_mini.mini_add:zs_noopt" }]\n')
    monkeypatch.delenv(mixtures.MIXTURES_DIR_ENV, raising=False)
    monkeypatch.setenv(mixtures.MIXTURES_PATH_ENV, "")  # restored after the test
    assert cli.main(["mixture", "--list", "--mixtures_path", str(tmp_path)]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert "my_added_mix" in names and "flan_mini_all" in names
    # given twice (flag and variable): read once, not "declared twice"
    assert cli.main(["mixture", "my_added_mix", f"--mixtures_path={tmp_path}"]) == 0
    assert "flan_mini.mini_add:zs_noopt" in capsys.readouterr().out
