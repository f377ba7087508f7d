"""The train-example counts n behind a mixture's rates (mixture_rates.py), read without data.

    _Catalog().size(_Pick("flan_mini.mini_add:zs_opt", "flan_mini", "mini_add", "zs_opt"), "data")
        -> _Size(counts=(2000,), origin="procedural")   # counts None, origin "unknown": not known

`_Catalog.size` tries, in order: an override, the published counts (size_source "published"),
a `[local.NAME]` file's rows, the dataset's own source (procedural split size, prepared TFDS
split, local file), a release collection's files, the published zero-shot count; else the count
is unknown (the rules: mixture_rates.py's module doc). `_Catalog` also picks the leaf tasks of a
selector or release entry; an unknown collection, cluster or variant raises MixtureError.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flan_jax.data.mixing import published_sizes
from flan_jax.data.mixing.mixture_types import MixtureError
from flan_jax.data.sources import flan2022_readers
from flan_jax.data.tasks import catalogue
from flan_jax.data.tasks import registry as tasks_lib
from flan_jax.data.templates.spec import LocalSource, ProceduralSource, TfdsSource


@dataclasses.dataclass(frozen=True)
class _Size:
    counts: tuple[int, ...] | None  # one per template type summed into the rate; None: unknown
    origin: str


@dataclasses.dataclass(frozen=True)
class _Pick:
    """One mixture entry's choice of a leaf task (the variant it asked for sizes the rate)."""

    task: str
    collection: str
    source: str
    variant: str


# ----------------------------------------------------------------------------- sizes


def _tfds_train_size(source: TfdsSource) -> int | None:
    """The prepared TFDS train split size, or None (not prepared here: nothing is downloaded)."""
    return _tfds_split_size(source.tfds_name, source.splits.get("train", "train"),
                            os.environ.get("TFDS_DATA_DIR"))


@functools.lru_cache(maxsize=None)
def _tfds_split_size(tfds_name: str, split: str, data_dir: str | None) -> int | None:
    try:
        import tensorflow_datasets as tfds

        builder = tfds.builder(tfds_name, try_gcs=False, data_dir=data_dir)
        if not builder.is_prepared():
            return None
        return int(builder.info.splits[split].num_examples)
    except Exception:  # noqa: BLE001 - any failure means "size unknown offline"
        return None


def _local_train_size(source: LocalSource, data_dir: str | None) -> int | None:
    base = data_dir or os.environ.get("FLAN_JAX_DATA_DIR")
    path = Path(source.file_pattern.replace("{split}", "train"))
    if not path.is_absolute():
        if not base:
            return None
        path = Path(base) / path
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        if f.read(1 << 16).lstrip().startswith(b"["):  # an Alpaca JSON list: its items, not its lines
            try:
                items = json.loads(path.read_bytes())
            except ValueError:
                return None  # registration names the problem
            return len(items) if isinstance(items, list) else None
        f.seek(0)
        return sum(1 for line in f if line.strip())


@dataclasses.dataclass
class _Catalog:
    """Leaf-task facts (collection, cluster, size) from the DatasetSpecs, read once."""

    data_dir: str | None = None
    overrides: dict[str, int] = dataclasses.field(default_factory=dict)
    local_sources: dict[str, LocalSource] = dataclasses.field(default_factory=dict)  # `[local.NAME]`s
    _specs: dict[str, tuple] = dataclasses.field(default_factory=dict)
    _releases: dict[str, dict[str, int] | None] = dataclasses.field(default_factory=dict)

    def specs(self, collection: str):
        if collection not in self._specs:
            self._specs[collection] = catalogue.collection_datasets(collection)
        return self._specs[collection]

    def _spec_of(self, collection: str, source_name: str):
        if collection in catalogue.COLLECTIONS and collection != "local":
            for spec in self.specs(collection):
                if source_name in spec.sources:
                    return spec
        return None

    def select(self, entry: Mapping[str, Any], where: str) -> list[_Pick]:
        collection = entry["collection"]
        if collection not in catalogue.COLLECTIONS:
            raise MixtureError(f"{where}: {tasks_lib.unknown('collection', collection, catalogue.COLLECTIONS)}")
        specs = self.specs(collection)
        clusters = {s.cluster for s in specs}
        for key in ("clusters", "exclude_clusters"):
            for c in entry.get(key, []):
                if c not in clusters:
                    raise MixtureError(f"{where}: {tasks_lib.unknown('cluster', c, sorted(clusters))}")
        for variant in entry.get("variants", ["zs_opt"]):
            if variant not in tasks_lib.VARIANTS:
                raise MixtureError(f"{where}: {tasks_lib.unknown('variant', variant, tasks_lib.VARIANTS)}")
        picks = []
        for spec in specs:
            if "clusters" in entry and spec.cluster not in entry["clusters"]:
                continue
            if spec.cluster in entry.get("exclude_clusters", []):
                continue
            if "datasets" in entry and spec.name not in entry["datasets"]:
                continue
            for variant in entry.get("variants", ["zs_opt"]):
                # datasets without options have no *_opt task: the no-options one renders it
                rendered = variant if variant in tasks_lib.variants_for(spec) else variant.replace("_opt", "_noopt")
                for source in spec.sources:
                    picks.append(_Pick(tasks_lib.task_name(collection, source, rendered),
                                       collection, source, variant))
        if not picks:
            raise MixtureError(f"{where}: the selector matches no task")
        return picks

    def release_sizes(self, collection: str) -> dict[str, int] | None:
        if collection not in self._releases:
            self._releases[collection] = flan2022_readers.train_sizes(collection, self.data_dir)
        return self._releases[collection]

    def release_picks(self, entry: Mapping[str, Any], where: str) -> list[_Pick]:
        """Source tasks of a NIv2 / T0-SF / Dialog collection: the files present, else the
        published list (T0-SF, Dialog), else one placeholder `<collection>.*` task that
        registration refuses, naming the missing directory."""
        collection = entry["release"]
        if collection not in flan2022_readers.RELEASES:
            raise MixtureError(f"{where}: {tasks_lib.unknown('release collection', collection, flan2022_readers.RELEASES)}")
        sizes = self.release_sizes(collection)
        if sizes is None:
            sources = [s for (c, s) in published_sizes.table() if c == collection] or ["*"]
        else:
            sources = sorted(sizes)
        if not sources:
            raise MixtureError(f"{where}: no {collection} task files found")
        picks = []
        for variant in entry.get("variants", ["zs_opt"]):
            if variant not in flan2022_readers.RECIPE_VARIANTS:
                raise MixtureError(f"{where}: {tasks_lib.unknown('variant', variant, flan2022_readers.RECIPE_VARIANTS)}")
            rendered = variant.replace("_opt", "_noopt")
            picks += [_Pick(tasks_lib.task_name(collection, s, rendered), collection, s, variant)
                      for s in sources]
        return picks

    def cluster(self, task: str) -> tuple[str, str]:
        """(collection, cluster) of a leaf task name."""
        collection, _, rest = task.partition(".")
        spec = self._spec_of(collection, rest.partition(":")[0])
        if spec is not None:
            return collection, spec.cluster
        return collection, "local" if collection == "local" else collection

    def size(self, pick: _Pick, size_source: str) -> _Size:
        if pick.task in self.overrides:
            return _Size((int(self.overrides[pick.task]),), "override")
        published = published_sizes.lookup(pick.collection, pick.source)
        origin = f"published: {published_sizes.SOURCE}"
        variant = pick.variant if pick.variant in published_sizes.VARIANT_TEMPLATE_TYPES else "zs_opt"
        if published is not None and size_source == "published":
            types = published_sizes.VARIANT_TEMPLATE_TYPES[variant]
            return _Size(tuple(published.count(t) for t in types), origin)
        if pick.collection == "local" and pick.source in self.local_sources:
            n = _local_train_size(self.local_sources[pick.source], self.data_dir)
            if n is not None:
                return _Size((n,), "local_file")
        spec = self._spec_of(pick.collection, pick.source)
        if spec is not None:
            n, how = self._data_size(spec.sources[pick.source])
            if n is not None:
                return _Size((n,), how)
        if pick.collection in flan2022_readers.RELEASES:
            n = (self.release_sizes(pick.collection) or {}).get(pick.source)
            if n is not None:
                return _Size((n,), "local_file")
        if published is not None:
            return _Size((published.zero_shot,), origin)
        return _Size(None, "unknown")

    def _data_size(self, source) -> tuple[int | None, str]:
        if isinstance(source, ProceduralSource):
            return int(source.split_sizes.get("train", 0)), "procedural"
        if isinstance(source, TfdsSource):
            return _tfds_train_size(source), "tfds"
        if isinstance(source, LocalSource):
            return _local_train_size(source, self.data_dir), "local_file"
        return None, "unknown"
