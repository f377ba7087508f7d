"""seqio tasks from DatasetSpecs: explicit `register_*` functions, idempotent and deterministic.

Importing this module registers nothing and reads no file. Each call registers (or finds already
registered) one seqio task per (source, variant) and returns the task names.

Task names
----------
`<collection>.<source>:<variant>`, e.g. `flan2021.rte:zs_opt`, `flan2021.anli_r2:fs_noopt`,
`cot.gsm8k:zs_noopt`, `flan_mini.<name>:eval`, `flan_nl.<name>:eval`, `local.my_alpaca:zs_noopt`. seqio accepts names
matching `^[\\w\\d\\.\\:_#]+$`; `.` separates the collection and `:` the variant, so a name splits
back unambiguously. `<source>` is a key of `DatasetSpec.sources` (ANLI has three).

Variants (`VARIANTS`, flan_jax.data.variants)
---------------------------------------------
    zs_opt, zs_noopt, zs_opt_var       zero-shot (options block / none / varied format)
    fs_opt, fs_noopt                   few-shot, Flan 2022 template mix (5 exemplars)
    fs_opt_t0 .. fs_noopt_t2           few-shot, one template slot (5 / 2 / 1 exemplars)
    fs_opt_x, fs_noopt_x               few-shot, x-shot (exemplars in the example's template)
    eval, eval_t<i>                    evaluation: first / i-th non-inverted template
Datasets without answer options have no `*_opt*` variants; `variants_for(spec)` lists them.

Examples (after the preprocessors, before the feature converter)
----------------------------------------------------------------
    {"inputs": int32[n] (no EOS), "targets": int32[m] ending in EOS,
     "inputs_pretokenized": str, "targets_pretokenized": str,
     "task": "flan2021.rte:zs_opt", "cluster": "nli", "variant": "zs_opt",
     "template_index": int32, "num_shots": int32 (exemplars kept after pruning),
     "options": string[k] (the raw answer options for rank classification; [] if none),
     "answer": str (the answer field; differs from targets for inverted templates)}

Rendering runs in Python inside tf.data (flan_jax.data.tf_render).
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Sequence
from typing import Any

import seqio

from flan_jax.data import fewshot
from flan_jax.data.render import TemplateError, placeholders
from flan_jax.data.sources import local_spec, make_data_source
from flan_jax.data.tf_render import (  # noqa: F401  (re-exported)
    RENDER_BATCH, raw_to_fields, render_preprocessor,
)
from flan_jax.data.spec import (
    OPTIONS_PLACEHOLDER, DatasetSpec, Fields, LocalSource, Source, Template, TfdsSource,
)
from flan_jax.data.variants import (  # noqa: F401  (re-exported: the public names of tasks)
    DEFAULT_POOL_SIZE, DEFAULT_SEED, SETTINGS, VARIANTS, ExampleRenderer, RenderConfig,
    default_render_config,
    eval_variants, setting_for, variants_for,
)
from flan_jax.errors import FlanJaxError

METADATA_KEYS = ("task", "cluster", "variant", "template_index", "num_shots", "options", "answer")


class UnknownNameError(FlanJaxError):
    """An unknown task, dataset or collection name (the message suggests close names)."""


def unknown(kind: str, name: str, known: Sequence[str]) -> UnknownNameError:
    known = list(dict.fromkeys(known))
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    close += [k for k in known if name and name in k and k not in close][: 8 - len(close)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return UnknownNameError(f"unknown {kind} {name!r}{hint}")


def task_name(collection: str, source: str, variant: str) -> str:
    return f"{collection}.{source}:{variant}"


def check_templates(spec: DatasetSpec, templates: Sequence[Template]) -> None:
    """Raises TemplateError if a template names a field `to_fields` does not produce."""
    known = set(spec.fields) | {OPTIONS_PLACEHOLDER}
    for i, t in enumerate(templates):
        for name in placeholders(t.inputs) + placeholders(t.targets):
            if name not in known:
                raise TemplateError(
                    f"dataset {spec.name!r}, template {i}: field {name!r} is not one of the "
                    f"dataset's fields ({', '.join(spec.fields)})"
                )


def default_vocabulary() -> seqio.Vocabulary:
    """The project's sentencepiece vocabulary (flan_jax.data.vocab)."""
    try:
        from flan_jax.data.vocab import default_vocabulary as project_vocabulary
    except ImportError as e:
        raise FlanJaxError(f"no default vocabulary ({e}); pass vocabulary=...") from None
    return project_vocabulary()


def output_features(vocabulary: seqio.Vocabulary) -> dict[str, seqio.Feature]:
    return {
        "inputs": seqio.Feature(vocabulary, add_eos=False, required=False),
        "targets": seqio.Feature(vocabulary, add_eos=True),
    }


# Task name -> what it was registered with, so a second identical call is a no-op.
_REGISTERED: dict[str, tuple] = {}


POOL_SCAN = 4  # rows scanned per pool row


def _pool_loader(data_source: seqio.DataSource, split: str, spec: DatasetSpec, size: int,
                 seed: int):
    """Few-shot candidates: `size` rows drawn from the train split as a seeded shuffle would.

    Reads the split shuffled (TFDS: file order and interleaving from the seed; local and
    procedural sources read in order), keeps the first `POOL_SCAN * size` rows `to_fields`
    keeps, and returns the `size` of them with the smallest SHA-256("pool", seed, row key): a
    uniform draw from that window (the whole split when it is small), the same in every
    process, independent of the order the rows arrived in. Which pool rows an example gets is
    decided by content hashes too (fewshot.choose_exemplars).

        100 train rows, size 10 -> the 10 of the first 40 rows with the smallest pool hash
    """

    def load() -> list[tuple[str, Fields]]:
        scanned: list[tuple[str, Fields]] = []
        dataset = data_source.get_dataset(split=split, shuffle=True, seed=seed)
        for raw in dataset.take(8 * POOL_SCAN * size).as_numpy_iterator():
            fields = raw_to_fields(spec, raw)
            if fields is not None:
                scanned.append((fewshot.example_key(fields), fields))
                if len(scanned) == POOL_SCAN * size:
                    break
        scanned.sort(key=lambda kf: (fewshot.stable_int("pool", seed, kf[0]), kf[0]))
        return scanned[:size]

    return load


def resolve_source(source: Source, data_dir: str | None, tfds_data_dir: str | None) -> Source:
    """`source`, or its local `fallback` when the TFDS data is not prepared and the files exist.

    Decided once at registration from the file system (no network): e.g. fix_punct reads
    TFDS para_crawl/enda when it is prepared, else fix_punct/{split}.jsonl under data_dir.
    """
    if not isinstance(source, TfdsSource) or source.fallback is None:
        return source
    root = data_dir or os.environ.get("FLAN_JAX_DATA_DIR")
    split = source.fallback.splits[0]
    local = root and os.path.isfile(os.path.join(root, source.fallback.file_pattern.format(split=split)))
    if not local:
        return source
    try:
        import tensorflow_datasets as tfds  # noqa: PLC0415

        prepared = tfds.builder(source.tfds_name, data_dir=tfds_data_dir).is_prepared()
    except Exception:  # noqa: BLE001  (no builder code, no data: the fallback it is)
        prepared = False
    return source if prepared else source.fallback


def count_tokens_with(vocabulary: seqio.Vocabulary) -> Callable[[str], int]:
    """Token counter for few-shot pruning (FLAN counts tokens with the task's vocabulary)."""

    def count(text: str) -> int:
        return len(vocabulary.encode(text))

    return count


def register_dataset_tasks(
    spec: DatasetSpec,
    vocabulary: seqio.Vocabulary | None = None,
    *,
    collection: str = "custom",
    variants: Sequence[str] | None = None,
    config: RenderConfig | None = None,
    data_dir: str | None = None,
    tfds_data_dir: str | None = None,
    use_cot_templates: bool = False,
) -> list[str]:
    """Registers the tasks of every source x variant of `spec`; returns their names."""
    # Each task declares its postprocessor and metrics (seqio.Evaluator conventions); imported
    # here so the data layer does not load the evaluation stack at import.
    from flan_jax.eval import metrics as eval_metrics  # noqa: PLC0415

    vocabulary = default_vocabulary() if vocabulary is None else vocabulary
    config = default_render_config() if config is None else config
    cot = bool(use_cot_templates and spec.cot_templates)
    templates = spec.cot_templates if cot else spec.templates
    fs_templates = fewshot.fewshot_templates(spec, templates if cot else None)
    check_templates(spec, templates)
    check_templates(spec, fs_templates)
    postprocess_fn = eval_metrics.postprocessor_for(spec, cot)
    metric_fns = eval_metrics.metric_fns_for(spec)
    known = variants_for(spec, templates)
    variants = known if variants is None else tuple(variants)
    for v in variants:
        if v not in known:
            raise unknown("variant", v, known)
    names = []
    for source_name, source in spec.sources.items():
        source = resolve_source(source, data_dir, tfds_data_dir)
        checks_target = isinstance(source, LocalSource) and spec.answer_field in source.columns
        target = spec.answer_field if checks_target else None
        splits = tuple(source.splits)
        pool_split = "train" if "train" in splits else splits[0]
        for variant in variants:
            name = task_name(collection, source_name, variant)
            signature = (spec, variant, vocabulary, config, data_dir, tfds_data_dir, templates)
            if name in seqio.TaskRegistry.names():
                if _REGISTERED.get(name) == signature:
                    names.append(name)
                    continue
                if name not in _REGISTERED:
                    raise FlanJaxError(f"task {name!r} is already registered by other code")
                seqio.TaskRegistry.remove(name)
            data_source = make_data_source(
                source, dataset=spec.name,
                data_dir=data_dir, target=target, tfds_data_dir=tfds_data_dir,
            )
            renderer = ExampleRenderer(spec, name, variant, tuple(templates), config,
                                       count_tokens_with(vocabulary), fs_templates)
            preprocessors = [
                render_preprocessor(renderer, _pool_loader(
                    data_source, pool_split, spec, config.pool_size, config.seed)),
                seqio.preprocessors.tokenize,
                seqio.CacheDatasetPlaceholder(),
                seqio.preprocessors.append_eos_after_trim,
            ]
            seqio.TaskRegistry.add(
                name, source=data_source, preprocessors=preprocessors,
                output_features=output_features(vocabulary),
                postprocess_fn=postprocess_fn, metric_fns=metric_fns,
            )
            _REGISTERED[name] = signature
            names.append(name)
    return names


# ---------------------------------------------------------------------------------------------
# Collections: the FLAN 2021 catalogue, CoT, flan-mini, flan-nl and local instruction files.

# flan_nl_no_template: the flan-nl datasets with bare inputs instead of instructions (the "no
# template" control; flan_jax.data.flan_nl.no_template_spec).
COLLECTIONS = ("flan2021", "cot", "flan_mini", "flan_nl", "flan_nl_no_template", "local")
SAMPLES_DIR = "assets/samples"  # bundled Alpaca/chat samples, inside the flan_jax package


def collection_datasets(collection: str) -> tuple[DatasetSpec, ...]:
    """The DatasetSpecs of one collection (imports its modules; reads no data files)."""
    if collection == "flan2021":
        from flan_jax.data import flan2021

        return flan2021.all_datasets()
    if collection == "cot":
        from flan_jax.data import cot

        return tuple(cot.COT_DATASETS)
    if collection == "flan_mini":
        from flan_jax.data import flan_mini

        return tuple(flan_mini.all_datasets())
    if collection == "flan_nl":
        from flan_jax.data import flan_nl

        return tuple(flan_nl.all_datasets())
    if collection == "flan_nl_no_template":
        from flan_jax.data import flan_nl

        return flan_nl.no_template_datasets()
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
    from flan_jax.data import flan2021

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
    """The seqio task `name`, registering its dataset first if needed; suggests close names."""
    if name in seqio.TaskRegistry.names():
        return seqio.get_mixture_or_task(name)
    collection, _, rest = name.partition(".")
    source, _, variant = rest.partition(":")
    if collection in COLLECTIONS:
        for spec in importable_datasets(collection):
            if source in spec.sources and variant in variants_for(spec, task_templates(spec, collection)):
                register_dataset_tasks(spec, vocabulary, collection=collection,
                                       use_cot_templates=collection == "cot", **kwargs)
                return seqio.get_mixture_or_task(name)
    raise unknown("task", name, all_task_names() + list(seqio.TaskRegistry.names()))
