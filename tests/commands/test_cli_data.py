"""`flan-jax catalog` and `flan-jax show` through the CLI entry point (in-process)."""
import json

from flan_jax import cli
from flan_jax.data.templates import flan2021


def test_catalog_json_lists_every_flan2021_dataset(capsys):
    assert cli.main(["catalog", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    flan = [e for e in entries if e["collection"] == "flan2021"]
    assert len(flan) == 62
    assert sorted(e["name"] for e in flan) == sorted(s.name for s in flan2021.all_datasets())
    rte = next(e for e in flan if e["name"] == "rte")
    assert rte["cluster"] == "nli" and rte["tfds_backed"] is True and rte["templates"] == 10
    assert rte["sources"]["rte"].startswith("tfds:super_glue/rte:")
    assert "flan2021.rte:zs_opt" in rte["tasks"] and "train" in rte["splits"]
    collections = {e["collection"] for e in entries}
    assert {"flan2021", "cot", "flan_mini"} <= collections


def test_catalog_table(capsys):
    assert cli.main(["catalog"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["collection", "dataset", "cluster"]
    assert out.rstrip().endswith("datasets")


def test_show_prints_rendered_local_examples(tmp_path, capsys, monkeypatch):
    # A task registered by the caller is shown as is (no TFDS involved).
    from flan_jax.data.tasks import catalogue
    import seqio

    path = tmp_path / "a.jsonl"
    path.write_text('{"instruction": "Add 2 and 3.", "input": "", "output": "5"}\n')
    catalogue.register_local_tasks("cli_demo", str(path), format="alpaca",
                               vocabulary=seqio.ByteVocabulary())
    assert cli.main(["show", "local.cli_demo:eval", "-n", "1"]) == 0
    out = capsys.readouterr().out
    assert "--- inputs\nAdd 2 and 3.\n--- targets\n5\n" in out
    assert "(cluster local, template 0, variant eval, shots 0)" in out


def test_show_mock_tfds_task(capsys):
    assert cli.main(["show", "flan2021.rte:eval", "-n", "2", "--mock", "--split", "validation"]) == 0
    out = capsys.readouterr().out
    assert out.count("=== flan2021.rte:eval") == 2
    assert "OPTIONS:\n- yes\n- no" in out and "variant eval" in out


def test_show_unknown_task_suggests_names(capsys):
    assert cli.main(["show", "flan2021.rtee:zs_opt"]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'flan2021.rtee:zs_opt'" in err and "flan2021.rte:zs_opt" in err
    assert cli.main(["show", "flan2021.rte:eval", "--split", "tran", "--mock"]) == 2
    assert "did you mean train" in capsys.readouterr().err
