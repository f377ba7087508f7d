"""NIv2 / T0-SF / Dialog readers: one seqio task per source task, per-task caps in mixtures,
bad files named. Fixtures are tiny files written here."""
import json
from pathlib import Path

import pytest

from flan_jax.data.sources import flan2022_readers as readers
from flan_jax.data.mixing import mixtures
from flan_jax.errors import FlanJaxError


def niv2_task(definition, positives, instances):
    return {"Definition": [definition], "Positive Examples": [{"input": i, "output": o, "explanation": ""} for i, o in positives],
            "Negative Examples": [], "Instances": [{"id": f"x{k}", "input": i, "output": [o]} for k, (i, o) in enumerate(instances)]}


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    tasks = tmp_path / "niv2" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "task1_add.json").write_text(json.dumps(niv2_task(
        "Add the two numbers.", [("1 2", "3")], [(f"{a} {a}", str(2 * a)) for a in range(7)])))
    (tasks / "task2_upper.json").write_text(json.dumps(niv2_task(
        "Uppercase the word.", [("ab", "AB")], [("cd", "CD"), ("ef", "EF")])))
    (tasks / "task3_test_only.json").write_text(json.dumps(niv2_task("Not for training.", [], [("a", "b")])))
    (tmp_path / "niv2" / "splits" / "default").mkdir(parents=True)
    (tmp_path / "niv2" / "splits" / "default" / "train_tasks.txt").write_text("task1_add\ntask2_upper\n")
    t0 = tmp_path / "t0_sf"
    t0.mkdir()
    # a T0-SF subset (dot in its P3 name) and a P3 subset that is in Flan 2021 (skipped)
    (t0 / "cos_e_v1.11_rationale.jsonl").write_text(
        "".join(json.dumps({"inputs": f"q{i}", "targets": f"a{i}"}) + "\n" for i in range(4)))
    # P3's own field names are read too
    (t0 / "cos_e_v1.11_explain_why_human.jsonl").write_text(json.dumps(
        {"inputs_pretokenized": "Why?", "targets_pretokenized": "Because.", "inputs": [1, 2]}) + "\n")
    (t0 / "ag_news_classify.jsonl").write_text(json.dumps({"inputs": "x", "targets": "y"}) + "\n")
    dialog = tmp_path / "dialog"
    dialog.mkdir()
    chat = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    (dialog / "qrecc.jsonl").write_text((json.dumps(chat) + "\n") * 3)
    monkeypatch.setenv("FLAN_JAX_DATA_DIR", str(tmp_path))
    return tmp_path


def test_sizes_per_source_task(data_dir):
    assert readers.train_sizes("niv2") == {"task1_add": 7, "task2_upper": 2}
    assert readers.train_sizes("t0_sf") == {"cos_e_v1_11_rationale": 4, "cos_e_v1_11_explain_why_human": 1}
    (p3,) = [t for t in readers.read_collection("t0_sf") if t.name.endswith("human")]
    assert p3.rows == ({"inputs": "Why?", "answer": "Because."},)
    assert readers.train_sizes("dialog") == {"qrecc": 3}


@pytest.mark.slow
def test_niv2_rendering_uses_definition_and_positive_examples(data_dir):
    import seqio

    names = readers.register_release_tasks("niv2", vocabulary=seqio.ByteVocabulary())
    assert sorted(names) == ["niv2.task1_add:fs_noopt", "niv2.task1_add:zs_noopt",
                             "niv2.task2_upper:fs_noopt", "niv2.task2_upper:zs_noopt"]
    zs = list(seqio.get_mixture_or_task("niv2.task2_upper:zs_noopt").get_dataset(
        {"inputs": 128, "targets": 16}, split="train", shuffle=False, use_cached=False).as_numpy_iterator())
    # ByteVocabulary: ids are UTF-8 bytes + 3
    assert bytes(int(t) - 3 for t in zs[0]["inputs"]).decode() == "Uppercase the word.\n\ncd"
    assert bytes(int(t) - 3 for t in zs[0]["targets"][:-1]).decode() == "CD"
    fs = next(seqio.get_mixture_or_task("niv2.task2_upper:fs_noopt").get_dataset(
        {"inputs": 128, "targets": 16}, split="train", shuffle=False, use_cached=False).as_numpy_iterator())
    # the template-mix few-shot layout (docs/data.md "Few-shot format"): the positive example,
    # one of the mix separators (drawn per task), then the prompt ending in "\n"
    from flan_jax.data.templates.fewshot import MIX_SEPARATORS
    text = bytes(int(t) - 3 for t in fs["inputs"]).decode()
    head, tail = "Uppercase the word.\n\nab\nAB", "Uppercase the word.\n\ncd\n"
    assert text.startswith(head) and text.endswith(tail)
    assert text[len(head):-len(tail)] in MIX_SEPARATORS


def test_mixture_caps_each_source_task(data_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "m.toml"
    path.write_text('[mixture.m]\ncap = 5\ninclude = [{ release = "niv2", variants = ["zs_opt"] }]\n')
    decls, _ = mixtures.load_files([path])
    got = {leaf.task: leaf.share for leaf in mixtures.resolve("m", decls)}
    # min(7, 5) : min(2, 5)
    assert got == pytest.approx({"niv2.task1_add:zs_noopt": 5 / 7, "niv2.task2_upper:zs_noopt": 2 / 7})


def test_shipped_niv2_submixture_registers_from_files(data_dir):
    import seqio

    leaves = mixtures.register_mixture("flan2022_niv2", vocabulary=seqio.ByteVocabulary())
    # 50% zero-shot, 50% few-shot; inside each, 7 : 2 (both under the 5,000 cap)
    assert {leaf.task: leaf.share for leaf in leaves} == pytest.approx({
        "niv2.task1_add:zs_noopt": 0.5 * 7 / 9, "niv2.task2_upper:zs_noopt": 0.5 * 2 / 9,
        "niv2.task1_add:fs_noopt": 0.5 * 7 / 9, "niv2.task2_upper:fs_noopt": 0.5 * 2 / 9})
    assert "flan2022_niv2" in seqio.MixtureRegistry.names()


def test_missing_directory_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAN_JAX_DATA_DIR", str(tmp_path))
    with pytest.raises(mixtures.MixtureError, match=f"niv2: directory {tmp_path / 'niv2'} not found"):
        mixtures.register_mixture("flan2022_niv2")
    # T0-SF resolves from the published list but cannot register without its files
    with pytest.raises(mixtures.MixtureError, match="t0_sf: directory .* not found"):
        mixtures.register_mixture("flan2022_t0_sf")


@pytest.mark.parametrize("task, message", [
    ({"Definition": ["d"], "Positive Examples": []}, "field 'Instances' missing or not a list"),
    ({"Definition": [], "Positive Examples": [], "Instances": []}, "'Definition': expected a non-empty string"),
    ({"Definition": ["d"], "Positive Examples": [], "Instances": [{"input": "a", "output": []}]},
     "'Instances'[0].output: expected a non-empty string"),
])
def test_bad_niv2_file_names_file_and_field(tmp_path, task, message):
    path = tmp_path / "task9_bad.json"
    path.write_text(json.dumps(task))
    with pytest.raises(readers.ReleaseFileError) as e:
        readers.read_niv2_task(path)
    assert str(e.value).startswith(str(path)) and message in str(e.value)


def test_bad_t0_line_names_file_and_line(tmp_path, monkeypatch):
    (tmp_path / "t0_sf").mkdir()
    bad = tmp_path / "t0_sf" / "cos_e_v1.11_rationale.jsonl"
    bad.write_text('{"inputs": "q"}\n')
    monkeypatch.setenv("FLAN_JAX_DATA_DIR", str(tmp_path))
    with pytest.raises(FlanJaxError, match=f"{bad}: row 1: needs 'inputs' and 'targets'"):
        readers.train_sizes("t0_sf")
    bad.write_text('{"inputs": "q", "targets": "a"}\n{"inputs": "q", "targets": \n')
    with pytest.raises(FlanJaxError, match=f"{bad}:2: malformed JSON"):
        readers.train_sizes("t0_sf")


@pytest.mark.slow
def test_cli_mixture_of_empty_tasks_is_one_line(tmp_path):
    import subprocess
    import sys

    (tmp_path / "niv2" / "tasks").mkdir(parents=True)
    (tmp_path / "niv2" / "tasks" / "task5_empty.json").write_text(json.dumps(niv2_task("d", [], [])))
    path = tmp_path / "m.toml"
    path.write_text('[mixture.m]\ncap = 5000\ninclude = [{ release = "niv2", variants = ["zs_opt"] }]\n')
    env = {"PATH": "/usr/bin:/bin", "FLAN_JAX_DATA_DIR": str(tmp_path),
           "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    proc = subprocess.run([sys.executable, "-m", "flan_jax.cli", "mixture", "m", "--mixtures_file", str(path)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{path}: mixture 'm': none of its tasks has training examples (niv2.task5_empty:zs_noopt)" in proc.stderr
