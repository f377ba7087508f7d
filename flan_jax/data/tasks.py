"""seqio tasks from DatasetSpecs: explicit `register_*` functions, idempotent and deterministic.

Importing this module registers nothing and reads no file. Each call registers (or finds already
registered) one seqio task per (source, variant) and returns the task names.

Task names
----------
`<collection>.<source>:<variant>`, e.g. `flan2021.rte:zs_opt`, `flan2021.anli_r2:fs_noopt`,
`cot.gsm8k:zs_noopt`, `flan_mini.<name>:eval`, `flan_nl.<name>:eval`, `local.my_alpaca:zs_noopt`. seqio accepts names
matching `^[\\w\\d\\.\\:_#]+$`; `.` separates the collection and `:` the variant, so a name splits
back unambiguously. `<source>` is a key of `DatasetSpec.sources` (ANLI has three).

Variants (`VARIANTS`)
---------------------
    zs_opt    zero-shot, one of the dataset's templates per example, answer options shown
    zs_noopt  zero-shot, options not shown
    fs_opt    few-shot (see flan_jax.data.fewshot), options shown in exemplars and example
    fs_noopt  few-shot, options not shown
    eval      one fixed template per task (the first non-inverted one), options shown if any
Datasets without answer options get only `zs_noopt`, `fs_noopt` and `eval` (the `_opt` variants
would render identically and double their weight in a mixture); `variants_for(spec)` lists them.

Examples (after the preprocessors, before the feature converter)
----------------------------------------------------------------
    {"inputs": int32[n] (no EOS), "targets": int32[m] ending in EOS,
     "inputs_pretokenized": str, "targets_pretokenized": str,
     "task": "flan2021.rte:zs_opt", "cluster": "nli", "variant": "zs_opt",
     "template_index": int32, "num_shots": int32 (exemplars kept after pruning),
     "options": string[k] (the raw answer options for rank classification; [] if none),
     "answer": str (the answer field; differs from targets for inverted templates)}

Rendering runs in Python: decoded examples are grouped 64 at a time (`ragged_batch`, so
variable-length TFDS features become ragged), and one `tf.numpy_function` per group rebuilds each
nested example, applies `pyvalues.to_python`, the dataset's `to_fields` and `render`, then the
results are unbatched. Keeping templates as Python format strings (rather than re-implementing
them in TF string ops) is what makes them readable and lint-able; the cost is the GIL, which is
fine next to tokenization and the model step. Examples whose `to_fields` returns None are
dropped; a template naming a missing field fails with the dataset, template index and field.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import seqio
import tensorflow as tf

from flan_jax.data import fewshot
from flan_jax.data.pyvalues import to_python
from flan_jax.data.render import TemplateError, example_options, placeholders, render
from flan_jax.data.sources import ROW_JSON_KEY, local_spec, make_data_source
from flan_jax.data.spec import OPTIONS_PLACEHOLDER, DatasetSpec, Fields, LocalSource, Template
from flan_jax.errors import FlanJaxError

VARIANTS = ("zs_opt", "zs_noopt", "fs_opt", "fs_noopt", "eval")
DEFAULT_SEED = 0
DEFAULT_NUM_SHOTS = 3
DEFAULT_POOL_SIZE = 32  # few-shot candidates read from the start of the train split
DEFAULT_MAX_INPUT_CHARS = 4096  # few-shot inputs are pruned (exemplars dropped) to this length
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


def variants_for(spec: DatasetSpec) -> tuple[str, ...]:
    return VARIANTS if spec.has_options else ("zs_noopt", "fs_noopt", "eval")


@dataclasses.dataclass(frozen=True)
class RenderConfig:
    """The knobs of rendering that change examples (part of a task's registration identity)."""

    seed: int = DEFAULT_SEED
    num_shots: int = DEFAULT_NUM_SHOTS
    pool_size: int = DEFAULT_POOL_SIZE
    max_input_chars: int | None = DEFAULT_MAX_INPUT_CHARS


def raw_to_fields(spec: DatasetSpec, raw: Mapping[str, Any]) -> Fields | None:
    """A decoded source example -> template fields (None: the dataset drops it)."""
    if set(raw) == {ROW_JSON_KEY}:
        value = raw[ROW_JSON_KEY]
        row = json.loads(value.decode("utf-8") if isinstance(value, bytes) else to_python(value))
    else:
        row = to_python(dict(raw))
    return spec.to_fields(row)


@dataclasses.dataclass(frozen=True)
class ExampleRenderer:
    """Fields -> one rendered example of a task variant (pure Python, used inside tf.data).

    Worked example (rte, variant zs_opt, template 2 chosen by hash):
        fields {"premise": "A cat sat.", "hypothesis": "An animal sat.", "answer": "yes"}
        -> {"inputs": 'Given the text "A cat sat.", ...\\n\\nOPTIONS:\\n- yes\\n- no',
            "targets": "yes", "template_index": 2, "num_shots": 0,
            "options": ["yes", "no"], "answer": "yes"}
    """

    spec: DatasetSpec
    task: str
    variant: str
    templates: tuple[Template, ...]
    config: RenderConfig = RenderConfig()

    def __call__(
        self, fields: Fields, pool: Sequence[tuple[str, Fields]] = ()
    ) -> dict[str, Any]:
        key = fewshot.example_key(fields)
        with_options = self.spec.has_options and self.variant in ("zs_opt", "fs_opt", "eval")
        if self.variant == "eval":
            index = next(i for i, t in enumerate(self.templates) if not t.inverted)
        else:
            index = fewshot.choose_template(self.task, self.config.seed, key, len(self.templates))
        shots = 0
        if self.variant.startswith("fs_"):
            exemplars = fewshot.choose_exemplars(
                self.task, self.config.seed, key, pool, self.config.num_shots
            )
            inputs, targets, shots = fewshot.render_fewshot(
                self.spec, index, fields, exemplars, with_options=with_options,
                max_chars=self.config.max_input_chars, templates=self.templates,
            )
        else:
            inputs, targets = render(
                self.spec, index, fields, with_options=with_options, templates=self.templates
            )
        options = example_options(self.spec, fields) or ()
        return {
            "inputs": inputs, "targets": targets, "template_index": index, "num_shots": shots,
            "options": list(options), "answer": str(fields.get(self.spec.answer_field, "")),
        }


RENDER_BATCH = 64  # examples per Python call: amortizes the per-call cost of tf.numpy_function


def _nested_lists(values: np.ndarray, splits: Sequence[np.ndarray]) -> list:
    """Ragged components -> nested lists: values [a b c], splits ([0 2 3],) -> [[a b] [c]]."""
    out: Any = list(values)
    for s in reversed(splits):
        out = [out[s[i]:s[i + 1]] for i in range(len(s) - 1)]
    return out


def render_preprocessor(
    renderer: ExampleRenderer, load_pool: Callable[[], list[tuple[str, Fields]]]
) -> Callable[[tf.data.Dataset], tf.data.Dataset]:
    """A seqio preprocessor: raw source examples -> rendered text examples with metadata.

    Raw examples are grouped with `ragged_batch` (variable-length features become ragged), handed
    to Python as flat arrays, split back into one nested dict per example, rendered, and the
    results unbatched; examples whose `to_fields` returns None are filtered out.
    """

    def preprocess(dataset: tf.data.Dataset) -> tf.data.Dataset:
        pool = load_pool() if renderer.variant.startswith("fs_") else []
        batched = dataset.ragged_batch(RENDER_BATCH)
        structure = batched.element_spec
        levels = [s.ragged_rank if isinstance(s, tf.RaggedTensorSpec) else 0
                  for s in tf.nest.flatten(structure)]

        def py_render(*parts):
            columns, i = [], 0  # one list of per-example values per leaf
            for level in levels:
                columns.append(_nested_lists(parts[i], parts[i + 1:i + 1 + level]))
                i += 1 + level
            inputs, targets, index, shots, options, lengths, answer, keep = ([] for _ in range(8))
            for leaves in zip(*columns):
                raw = tf.nest.pack_sequence_as(structure, list(leaves))
                fields = raw_to_fields(renderer.spec, raw)
                out = renderer(fields, pool) if fields is not None else None
                keep.append(out is not None)
                out = out or {"inputs": "", "targets": "", "template_index": -1, "num_shots": 0,
                              "options": [], "answer": ""}
                inputs.append(out["inputs"].encode("utf-8"))
                targets.append(out["targets"].encode("utf-8"))
                index.append(out["template_index"])
                shots.append(out["num_shots"])
                options += [o.encode("utf-8") for o in out["options"]]
                lengths.append(len(out["options"]))
                answer.append(out["answer"].encode("utf-8"))
            text = lambda xs: np.array(xs, dtype=object).reshape(-1)  # noqa: E731
            return (text(inputs), text(targets), np.array(index, np.int32),
                    np.array(shots, np.int32), text(options), np.array(lengths, np.int64),
                    text(answer), np.array(keep, bool))

        def to_text(batch):
            parts = []
            for x in tf.nest.flatten(batch):
                ragged = isinstance(x, tf.RaggedTensor)
                parts += [x.flat_values, *x.nested_row_splits] if ragged else [x]
            inputs, targets, index, shots, options, lengths, answer, keep = tf.numpy_function(
                py_render, parts,
                [tf.string, tf.string, tf.int32, tf.int32, tf.string, tf.int64, tf.string, tf.bool],
                stateful=False,
            )
            for t in (inputs, targets, index, shots, options, lengths, answer, keep):
                t.set_shape([None])
            n = tf.shape(inputs)[0]
            return {
                "inputs": inputs, "targets": targets,
                "task": tf.fill([n], renderer.task), "cluster": tf.fill([n], renderer.spec.cluster),
                "variant": tf.fill([n], renderer.variant), "template_index": index,
                "num_shots": shots, "options": tf.RaggedTensor.from_row_lengths(options, lengths),
                "answer": answer, "_keep": keep,
            }

        rendered = batched.map(to_text).unbatch().filter(lambda ex: ex["_keep"])
        return rendered.map(lambda ex: {k: v for k, v in ex.items() if k != "_keep"})

    return preprocess


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


def _pool_loader(data_source: seqio.DataSource, split: str, spec: DatasetSpec, size: int):
    def load() -> list[tuple[str, Fields]]:
        pool: list[tuple[str, Fields]] = []
        dataset = data_source.get_dataset(split=split, shuffle=False).take(4 * size)
        for raw in dataset.as_numpy_iterator():
            fields = raw_to_fields(spec, raw)
            if fields is not None:
                pool.append((fewshot.example_key(fields), fields))
                if len(pool) == size:
                    break
        return pool

    return load


def register_dataset_tasks(
    spec: DatasetSpec,
    vocabulary: seqio.Vocabulary | None = None,
    *,
    collection: str = "custom",
    variants: Sequence[str] | None = None,
    config: RenderConfig = RenderConfig(),
    data_dir: str | None = None,
    tfds_data_dir: str | None = None,
    use_cot_templates: bool = False,
) -> list[str]:
    """Registers the tasks of every source x variant of `spec`; returns their names."""
    # Each task declares its postprocessor and metrics (seqio.Evaluator conventions); imported
    # here so the data layer does not load the evaluation stack at import.
    from flan_jax.eval import metrics as eval_metrics  # noqa: PLC0415

    vocabulary = default_vocabulary() if vocabulary is None else vocabulary
    cot = bool(use_cot_templates and spec.cot_templates)
    templates = spec.cot_templates if cot else spec.templates
    check_templates(spec, templates)
    postprocess_fn = eval_metrics.postprocessor_for(spec, cot)
    metric_fns = eval_metrics.metric_fns_for(spec)
    variants = variants_for(spec) if variants is None else tuple(variants)
    for v in variants:
        if v not in VARIANTS:
            raise unknown("variant", v, VARIANTS)
    names = []
    for source_name, source in spec.sources.items():
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
                source, dataset=spec.name, data_dir=data_dir, target=target,
                tfds_data_dir=tfds_data_dir,
            )
            renderer = ExampleRenderer(spec, name, variant, tuple(templates), config)
            preprocessors = [
                render_preprocessor(
                    renderer, _pool_loader(data_source, pool_split, spec, config.pool_size)
                ),
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
    **kwargs: Any,
) -> list[str]:
    """Tasks over an Alpaca or chat file: `local.<name>:{zs_noopt,fs_noopt,eval}`.

    `path` may contain "{split}" (e.g. "/data/chat_{split}.jsonl" with splits train, validation).
    The file is read (and validated) when a dataset is first requested, not here.
    """
    spec = local_spec(name, path, format, splits)
    return register_dataset_tasks(spec, vocabulary, collection="local", **kwargs)


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
        for v in variants_for(spec)
    ]


def ensure_task(name: str, vocabulary: seqio.Vocabulary | None = None, **kwargs: Any) -> seqio.Task:
    """The seqio task `name`, registering its dataset first if needed; suggests close names."""
    if name in seqio.TaskRegistry.names():
        return seqio.get_mixture_or_task(name)
    collection, _, rest = name.partition(".")
    source, _, variant = rest.partition(":")
    if collection in COLLECTIONS and variant in VARIANTS:
        for spec in importable_datasets(collection):
            if source in spec.sources and variant in variants_for(spec):
                register_dataset_tasks(spec, vocabulary, collection=collection,
                                       use_cot_templates=collection == "cot", **kwargs)
                return seqio.get_mixture_or_task(name)
    raise unknown("task", name, all_task_names() + list(seqio.TaskRegistry.names()))
