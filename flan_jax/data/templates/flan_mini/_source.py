"""Shared plumbing of the flan-mini cluster modules: seeds, split sizes and the spec builder.

Every flan-mini row is already a dict of template fields, so `to_fields` is the identity.
Split seeds come from a CRC of "flan_mini/<dataset>/<split>" (not Python's `hash`, which
changes with PYTHONHASHSEED), so a split is the same in every process and on every machine:

    split_seed("mini_add", "train")  -> the same int everywhere
    procedural("mini_add", gen).split_sizes -> {"train": 2000, "validation": 200, "test": 200}
"""
from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from typing import Any

from flan_jax.data.templates.spec import DatasetSpec, Fields, ProceduralSource, Template

SPLIT_SIZES: dict[str, int] = {"train": 2000, "validation": 200, "test": 200}


def split_seed(dataset: str, split: str) -> int:
    """A stable 32-bit seed for one split of one dataset."""
    return zlib.crc32(f"flan_mini/{dataset}/{split}".encode("utf-8"))


def identity_fields(row: Mapping[str, Any]) -> Fields:
    """flan-mini rows are generated as template fields already; copy so callers may mutate."""
    return dict(row)


def procedural(dataset: str, generate: Callable[[int, int], list[Fields]]) -> ProceduralSource:
    return ProceduralSource(
        generate=generate,
        split_sizes=dict(SPLIT_SIZES),
        split_seeds={split: split_seed(dataset, split) for split in SPLIT_SIZES},
    )


def mini_dataset(
    name: str,
    cluster: str,
    generate: Callable[[int, int], list[Fields]],
    fields: tuple[str, ...],
    templates: tuple[Template, ...],
    description: str,
    **kwargs: Any,
) -> DatasetSpec:
    """A flan-mini DatasetSpec with one procedural source named like the dataset."""
    return DatasetSpec(
        name=name,
        cluster=cluster,
        sources={name: procedural(name, generate)},
        to_fields=identity_fields,
        fields=fields,
        templates=templates,
        description=description,
        **kwargs,
    )
