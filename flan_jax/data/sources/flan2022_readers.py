"""The Flan 2022 collections read from local files: NIv2, T0-SF and Dialog, one task per source task.

Flan 2022 caps every *source task* of these collections (flan/v2/mixtures.py
DEFAULT_MIXTURE_MAX_EXAMPLES: T0 20,000, NIv2 5,000, Dialog 200,000), so each source task
becomes its own seqio task `<collection>.<source>:<variant>` (e.g.
`niv2.task001_quoref_question_generation:zs_noopt`). Files live under
`<data_dir>/<collection>/` (data_dir: the argument, else FLAN_JAX_DATA_DIR):

    niv2/    the Super-NaturalInstructions release as shipped (github allenai/natural-instructions):
             tasks/<task>.json, one JSON object per task with "Definition" (list of str),
             "Positive Examples" (list of {"input", "output", ...}) and "Instances" (list of
             {"input", "output": list of str}); if splits/default/train_tasks.txt exists, only
             the tasks it names (one per line) are read.
    t0_sf/   one JSONL file per P3 subset, <subset>.jsonl, each line {"inputs": str,
             "targets": str} or P3's own field names {"inputs_pretokenized",
             "targets_pretokenized"} (the prompt is already applied; other keys are ignored). Only the 193 T0-SF subsets of the published table are read
             (flan/v2/constants_t0.py: not in Flan 2021, not *_score_eval); "." in a P3 name
             is "_" in the file name.
    dialog/  one JSONL file per dialog task, <task>.jsonl, each line a chat row
             {"messages": [{"role": "user" | "assistant" | "system", "content": str}, ...]}.

Worked example (niv2/tasks/task1_add.json):

    {"Definition": ["Add the two numbers."],
     "Positive Examples": [{"input": "1 2", "output": "3"}],
     "Instances": [{"id": "a", "input": "2 2", "output": ["4"]}]}
    -> source "task1_add", 1 training example;
       zs_noopt: inputs "Add the two numbers.\\n\\n2 2", targets "4"
       fs_noopt: the positive examples are the exemplars:
                 inputs "Add the two numbers.\\n\\n1 2\\n3\\n\\nAdd the two numbers.\\n\\n2 2"

None of these has answer options: the *_opt settings of the recipe are rendered by the no-options
tasks (see flan_jax.data.mixing.mixture_rates). A bad file raises ReleaseFileError naming the file and
the field; nothing is read at import.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flan_jax.data.mixing import published_sizes
from flan_jax.data.sources.datasources import DATA_DIR_ENV, ROW_JSON_KEY, chat_fields, read_rows
from flan_jax.data.templates.spec import DatasetSpec, Fields, LocalSource, Template
from flan_jax.errors import FlanJaxError

RELEASES = ("niv2", "t0_sf", "dialog")
NIV2_TRAIN_LIST = "splits/default/train_tasks.txt"
VARIANTS = ("zs_noopt", "fs_noopt")
# The recipe's settings a mixture may ask for; the *_opt ones are rendered by *_noopt tasks.
RECIPE_VARIANTS = ("zs_opt", "zs_noopt", "fs_opt", "fs_noopt")


class ReleaseFileError(FlanJaxError):
    """A NIv2 / T0-SF / Dialog file is missing or malformed (the message names file and field)."""


@dataclasses.dataclass(frozen=True)
class SourceTask:
    """One source task of a release collection: its file, rows and few-shot exemplars."""

    collection: str
    name: str
    path: str
    rows: tuple[Fields, ...]
    exemplars: tuple[Fields, ...] = ()


# ----------------------------------------------------------------------------- reading


def collection_dir(collection: str, data_dir: str | None) -> Path | None:
    base = data_dir or os.environ.get(DATA_DIR_ENV)
    return Path(base) / collection if base else None


def _niv2_text(value: Any, where: str) -> str:
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value[0]
    if isinstance(value, str) and value:
        return value
    raise ReleaseFileError(f"{where}: expected a non-empty string (or list of them), got {value!r:.80}")


def read_niv2_task(path: str | os.PathLike) -> SourceTask:
    """One NIv2 task file -> its instances as fields {"definition", "input", "answer"}."""
    path = str(path)
    try:
        task = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReleaseFileError(f"{path}: cannot read a JSON task ({e})") from None
    if not isinstance(task, dict):
        raise ReleaseFileError(f"{path}: expected a JSON object")
    for key in ("Definition", "Positive Examples", "Instances"):
        if not isinstance(task.get(key), list):
            raise ReleaseFileError(f"{path}: field {key!r} missing or not a list")
    definition = _niv2_text(task["Definition"], f"{path}: 'Definition'")
    rows, exemplars = [], []
    for i, ex in enumerate(task["Positive Examples"]):
        where = f"{path}: 'Positive Examples'[{i}]"
        if not isinstance(ex, dict):
            raise ReleaseFileError(f"{where}: expected an object")
        exemplars.append({"definition": definition, "input": _niv2_text(ex.get("input"), f"{where}.input"),
                          "answer": _niv2_text(ex.get("output"), f"{where}.output")})
    for i, inst in enumerate(task["Instances"]):
        where = f"{path}: 'Instances'[{i}]"
        if not isinstance(inst, dict):
            raise ReleaseFileError(f"{where}: expected an object")
        rows.append({"definition": definition, "input": _niv2_text(inst.get("input"), f"{where}.input"),
                     "answer": _niv2_text(inst.get("output"), f"{where}.output")})
    return SourceTask("niv2", Path(path).stem, path, tuple(rows), tuple(exemplars))


def _t0_row(row: Mapping[str, Any], where: str) -> Fields:
    """{"inputs", "targets"} or P3's own {"inputs_pretokenized", "targets_pretokenized"}."""
    for inputs, targets in (("inputs_pretokenized", "targets_pretokenized"), ("inputs", "targets")):
        if inputs in row and targets in row:
            if not all(isinstance(row[k], str) and row[k].strip() for k in (inputs, targets)):
                raise ReleaseFileError(f"{where}: {inputs!r} and {targets!r} must be non-empty strings")
            return {"inputs": row[inputs], "answer": row[targets]}
    raise ReleaseFileError(f"{where}: needs 'inputs' and 'targets' (or P3's 'inputs_pretokenized' "
                           f"and 'targets_pretokenized'), got keys {sorted(row)}")


def _jsonl_task(collection: str, path: Path) -> SourceTask:
    if collection == "t0_sf":
        rows = [_t0_row(r, f"{path}: row {i}") for i, r in enumerate(read_rows(path, "jsonl"), start=1)]
    else:
        rows = [chat_fields(r) for r in read_rows(path, "chat")]
    return SourceTask(collection, path.stem, str(path), tuple(rows))


def _source_name(name: str) -> str:
    return re.sub(r"[^\w]", "_", name)


@functools.lru_cache(maxsize=8)
def _read_dir(collection: str, root: str, stamp: float) -> tuple[SourceTask, ...]:
    del stamp  # part of the cache key only: a changed directory is read again
    base = Path(root)
    if collection == "niv2":
        files = sorted((base / "tasks").glob("*.json"))
        train_list = base / NIV2_TRAIN_LIST
        if train_list.is_file():
            wanted = {line.strip() for line in train_list.read_text(encoding="utf-8").splitlines() if line.strip()}
            files = [f for f in files if f.stem in wanted]
        return tuple(read_niv2_task(f) for f in files)
    files = sorted(base.glob("*.jsonl"))
    if collection == "t0_sf":
        published = {s for (c, s) in published_sizes.table() if c == "t0_sf"}
        files = [f for f in files if _source_name(f.stem) in published]
    return tuple(_jsonl_task(collection, f) for f in files)


def read_collection(collection: str, data_dir: str | None = None) -> tuple[SourceTask, ...] | None:
    """Every source task of a release collection, or None when its directory does not exist."""
    if collection not in RELEASES:
        raise ReleaseFileError(f"unknown release collection {collection!r} (known: {', '.join(RELEASES)})")
    root = collection_dir(collection, data_dir)
    if root is None or not root.is_dir():
        return None
    stamp = max((p.stat().st_mtime for p in root.rglob("*")), default=0.0)
    return _read_dir(collection, str(root), stamp)


def train_sizes(collection: str, data_dir: str | None = None) -> dict[str, int] | None:
    """{source name: training examples} of the files present, or None (no directory)."""
    tasks = read_collection(collection, data_dir)
    return None if tasks is None else {_source_name(t.name): len(t.rows) for t in tasks}


# ----------------------------------------------------------------------------- seqio tasks

TEMPLATES = {
    "niv2": (("definition", "input", "answer"), Template("{definition}\n\n{input}", "{answer}")),
    "t0_sf": (("inputs", "answer"), Template("{inputs}", "{answer}")),
    "dialog": (("conversation", "answer"), Template("{conversation}\n\nAssistant:", "{answer}")),
}


def dataset_spec(task: SourceTask) -> DatasetSpec:
    """The DatasetSpec of one source task (rows already read; cluster = the collection)."""
    fields, template = TEMPLATES[task.collection]
    return DatasetSpec(
        name=_source_name(task.name), cluster=task.collection,
        sources={_source_name(task.name): LocalSource(task.path, task.collection, fields, ("train",))},
        to_fields=dict, fields=fields, templates=(template,), metric="rouge",
        description=f"{task.collection} task {task.name} ({task.path})",
    )


def _rows_source(rows: Sequence[Mapping[str, Any]]):
    import seqio
    import tensorflow as tf

    encoded = [json.dumps(r, ensure_ascii=False) for r in rows]

    def fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices({ROW_JSON_KEY: tf.constant(encoded, tf.string, [len(encoded)])})

    return seqio.FunctionDataSource(fn, splits=("train",), num_input_examples={"train": len(rows)})


def register_release_tasks(collection: str, data_dir: str | None = None, vocabulary=None,
                           variants: Sequence[str] = VARIANTS, config=None) -> list[str]:
    """Registers `<collection>.<source>:<variant>` for every source task on disk; returns names.

    `config` is a flan_jax.data.tasks.registry.RenderConfig (seed, shots, pool size, length limit).
    Raises ReleaseFileError when the collection directory is missing or a file is bad. Few-shot
    exemplars: NIv2's positive examples; otherwise the first `config.pool_size` training rows.
    """
    import seqio

    from flan_jax.data.templates import fewshot
    from flan_jax.data.tasks import registry as tasks_lib

    found = read_collection(collection, data_dir)
    if found is None:
        raise ReleaseFileError(
            f"{collection}: directory {collection_dir(collection, data_dir) or collection + '/'} not found "
            f"(set {DATA_DIR_ENV}; its layout is described in flan_jax/data/sources/flan2022_readers.py)")
    vocabulary = tasks_lib.default_vocabulary() if vocabulary is None else vocabulary
    config = tasks_lib.default_render_config() if config is None else config
    names = []
    for task in found:
        spec = dataset_spec(task)
        pool_rows = task.exemplars or task.rows[:config.pool_size]
        pool = [(fewshot.example_key(r), dict(r)) for r in pool_rows]
        for variant in variants:
            name = tasks_lib.task_name(collection, spec.name, variant)
            if name in seqio.TaskRegistry.names():
                seqio.TaskRegistry.remove(name)
            renderer = tasks_lib.ExampleRenderer(spec, name, variant, spec.templates, config,
                                                 tasks_lib.count_tokens_with(vocabulary),
                                                 fewshot.fewshot_templates(spec))
            seqio.TaskRegistry.add(
                name, source=_rows_source(task.rows),
                preprocessors=[tasks_lib.render_preprocessor(renderer, lambda pool=pool: pool),
                               seqio.preprocessors.tokenize, seqio.CacheDatasetPlaceholder(),
                               seqio.preprocessors.append_eos_after_trim],
                output_features=tasks_lib.output_features(vocabulary), metric_fns=[],
            )
            names.append(name)
    return names
