"""seqio tasks from DatasetSpecs: explicit `register_*` functions, idempotent and deterministic.

Importing this module registers nothing and reads no file. Each call registers (or finds already
registered) one seqio task per (source, variant) and returns the task names.

Task names
----------
`<collection>.<source>:<variant>`, e.g. `flan2021.rte:zs_opt`, `flan2021.anli_r2:fs_noopt`,
`cot.gsm8k:zs_noopt`, `flan_mini.<name>:eval`, `local.my_alpaca:zs_noopt`. seqio accepts names
matching `^[\\w\\d\\.\\:_#]+$`; `.` separates the collection and `:` the variant, so a name splits
back unambiguously. `<source>` is a key of `DatasetSpec.sources` (ANLI has three).

Variants (`VARIANTS`, flan_jax.data.templates.variants)
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

Rendering runs in Python inside tf.data (flan_jax.data.tasks.tf_render).
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

import seqio

from flan_jax.data.templates import fewshot
from flan_jax.data.templates.render import TemplateError, placeholders
from flan_jax.data.sources import source_choice
from flan_jax.data.sources.datasources import make_data_source
from flan_jax.data.sources.packaged_source import PackagedSource
from flan_jax.data.tasks.tf_render import (  # noqa: F401  (re-exported)
    RENDER_BATCH, raw_to_fields, render_preprocessor,
)
from flan_jax.data.templates.spec import (
    OPTIONS_PLACEHOLDER, DatasetSpec, Fields, LocalSource, Source, Template,
)
from flan_jax.data.templates.variants import (  # noqa: F401  (re-exported: the public names of tasks)
    DEFAULT_POOL_SIZE, DEFAULT_SEED, SETTINGS, VARIANTS, ExampleRenderer, RenderConfig,
    default_render_config, fitted_config,
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
    """The project's sentencepiece vocabulary (flan_jax.data.features.vocab)."""
    try:
        from flan_jax.data.features.vocab import default_vocabulary as project_vocabulary
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


def reusable(name: str, vocabulary: seqio.Vocabulary | None = None, config: RenderConfig | None = None,
             data_dir: str | None = None, tfds_data_dir: str | None = None) -> bool:
    """Whether the registered task `name` can be used as it is: registered by other code, or by
    `register_dataset_tasks` with these options (None: the defaults at call time, resolved as
    `register_dataset_tasks` resolves them). False when `name` is not registered."""
    if name not in seqio.TaskRegistry.names():
        return False
    if name not in _REGISTERED:
        return True
    vocabulary = default_vocabulary() if vocabulary is None else vocabulary
    config = default_render_config() if config is None else config
    return _REGISTERED[name][2:6] == (vocabulary, config, data_dir, tfds_data_dir)


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
    """The source that serves `source`'s dataset now: TFDS when prepared, else its local
    `fallback` files when they exist, else a packaged copy when its package is installed
    (flan_jax.data.sources.source_choice). Decided once at registration from the file system
    (no network): e.g. fix_punct reads TFDS para_crawl/enda when it is prepared, else
    fix_punct/{split}.jsonl under data_dir; rte reads super_glue/rte, else the packaged GLUE RTE.
    """
    return source_choice.resolve(source, data_dir, tfds_data_dir)


def count_tokens_with(vocabulary: seqio.Vocabulary, cap: int | None = None) -> fewshot.TokenCounter:
    """Token counter for few-shot pruning (FLAN counts tokens with the task's vocabulary); text
    certainly longer than `cap` tokens counts as `cap + 1` without being encoded."""
    return fewshot.TokenCounter(vocabulary, cap)


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
    # here so importing the registry does not load rouge or sacrebleu.
    from flan_jax.data.tasks import metrics as eval_metrics  # noqa: PLC0415

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
        if isinstance(source, PackagedSource):  # exemplars never from the reported test part
            pool_split = source.pool_split
        else:
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
                                       count_tokens_with(vocabulary, config.few_shot_budget),
                                       fs_templates)
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
