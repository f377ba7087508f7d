"""Row readers: one seqio DataSource per `spec.Source`, and DatasetSpecs over users' files.

* `TfdsSource`       -> `seqio.TfdsDataSource` (TFDS features as TFDS decodes them).
* `LocalSource`      -> `seqio.FunctionDataSource` over rows read and validated in Python.
* `ProceduralSource` -> `seqio.FunctionDataSource` over `generate(split_seed, split_size)`.

Local and procedural rows can hold any JSON value (lists of options, nested dicts), which a
fixed tf.data signature cannot, so those sources yield one string feature per row,
`{ROW_JSON_KEY: json.dumps(row)}`, and the renderer (flan_jax.data.tasks.registry) decodes it:

    rows    [{"instruction": "Add 2 and 3.", "input": "", "output": "5"}]
    dataset [{"row_json": b'{"instruction": "Add 2 and 3.", "input": "", "output": "5"}'}]

Local files are read and validated *completely* (flan_jax.data.sources.local_files) before the first row
is yielded, so a bad line raises `LocalFileError` ("path:line: reason") instead of leaving a
partially read split.

File formats (one example per line unless said otherwise; UTF-8 only):

    jsonl   {"question": "Is ice cold?", "answer": "yes"}        keys: LocalSource.columns
    tsv     Is ice cold?<TAB>yes                                  cells: LocalSource.columns, no header
    alpaca  {"instruction": "...", "input": "", "output": "..."}  JSONL, or one JSON list of them
    chat    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
"""
from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flan_jax.data.sources.local_files import (  # noqa: F401  (re-exported: the readers' public names)
    FORMATS,
    LocalFileError,
    read_rows,
    scan,
)
from flan_jax.data.sources.packaged_source import PackagedSource, read_task_split
from flan_jax.data.sources.row_checks import ALPACA_COLUMNS, CHAT_ROLES  # noqa: F401  (re-exported)
from flan_jax.data.templates.spec import (
    DatasetSpec,
    Fields,
    LocalSource,
    ProceduralSource,
    Source,
    Template,
    TfdsSource,
)

ROW_JSON_KEY = "row_json"
DATA_DIR_ENV = "FLAN_JAX_DATA_DIR"


# ---------------------------------------------------------------------------------------------
# seqio data sources.


def _rows_dataset(rows: Sequence[Mapping[str, Any]]) -> "tf.data.Dataset":
    import tensorflow as tf

    encoded = [json.dumps(r, ensure_ascii=False, default=str) for r in rows]
    column = tf.constant(encoded, tf.string, [len(encoded)])  # shape given: [] is a valid split
    return tf.data.Dataset.from_tensor_slices({ROW_JSON_KEY: column})


def local_path(source: LocalSource, split: str, data_dir: str | None, dataset: str) -> Path:
    """The file of one split: data_dir / file_pattern with {split} replaced."""
    relative = source.file_pattern.replace("{split}", split)
    if Path(relative).is_absolute():
        return Path(relative)
    base = data_dir or os.environ.get(DATA_DIR_ENV)
    if not base:
        hint = f" {source.how_to_obtain}" if source.how_to_obtain else ""
        raise LocalFileError(
            f"dataset {dataset!r} reads local file {relative!r}: pass data_dir= or set "
            f"{DATA_DIR_ENV}.{hint}"
        )
    return Path(base) / relative


def make_data_source(
    source: Source,
    *,
    dataset: str,
    data_dir: str | None = None,
    target: str | None = None,
    tfds_data_dir: str | None = None,
) -> "seqio.DataSource":
    """The seqio DataSource of one `spec` source. Reads nothing until a split is requested."""
    import seqio  # here, so the readers above work without TensorFlow

    if isinstance(source, TfdsSource):
        return seqio.TfdsDataSource(
            tfds_name=source.tfds_name, splits=dict(source.splits), tfds_data_dir=tfds_data_dir
        )
    if isinstance(source, LocalSource):

        def local_fn(
            split: str, shuffle_files: bool, seed: int | None = None
        ) -> "tf.data.Dataset":
            path = local_path(source, split, data_dir, dataset)
            return _rows_dataset(read_rows(path, source.format, source.columns, target))

        return seqio.FunctionDataSource(local_fn, splits=tuple(source.splits))
    if isinstance(source, ProceduralSource):

        def procedural_fn(
            split: str, shuffle_files: bool, seed: int | None = None
        ) -> "tf.data.Dataset":
            rows = source.generate(source.split_seeds[split], source.split_sizes[split])
            return _rows_dataset(rows)

        return seqio.FunctionDataSource(
            procedural_fn, splits=source.splits, num_input_examples=dict(source.split_sizes)
        )
    if isinstance(source, PackagedSource):

        def packaged_fn(
            split: str, shuffle_files: bool, seed: int | None = None
        ) -> "tf.data.Dataset":
            return _rows_dataset(read_task_split(source, split))

        return seqio.FunctionDataSource(packaged_fn, splits=source.splits)
    raise TypeError(f"dataset {dataset!r}: unsupported source {type(source).__name__}")


# ---------------------------------------------------------------------------------------------
# DatasetSpecs for instruction files (Alpaca, chat): one plain FLAN-style template each.
# Chat turns are flattened to text here; per-turn loss masks live in flan_jax.data.features.chat.

CHAT_SPEAKERS = {"system": "System", "user": "User", "assistant": "Assistant"}


def alpaca_fields(row: Mapping[str, Any]) -> Fields:
    """{"instruction": "Add.", "input": "2 3", "output": "5"}
    -> {"prompt": "Add.\\n\\n2 3", "answer": "5"} ("input" may be missing or empty)."""
    extra = str(row.get("input") or "").strip()
    prompt = row["instruction"] + (f"\n\n{extra}" if extra else "")
    return {"prompt": prompt, "answer": row["output"]}


def chat_fields(row: Mapping[str, Any]) -> Fields:
    """Turns up to the last assistant turn -> conversation text; that turn is the answer.

    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    -> {"conversation": "User: Hi", "answer": "Hello"}
    """
    messages = row["messages"]
    last = max(i for i, t in enumerate(messages) if t["role"] == "assistant")
    lines = [f"{CHAT_SPEAKERS[t['role']]}: {t['content']}" for t in messages[:last]]
    return {"conversation": "\n\n".join(lines), "answer": messages[last]["content"]}


LOCAL_SPEC_FORMATS = ("alpaca", "chat", "cot", "jsonl", "tsv")


def columns_fields(row: Mapping[str, Any], columns: Sequence[str]) -> Fields:
    """A jsonl/tsv row -> its `columns` as text: {"q": "Is ice cold?", "a": "yes"} with
    columns ("q", "a") -> {"q": "Is ice cold?", "a": "yes"} (non-strings via json.dumps)."""
    return {c: row[c] if isinstance(row[c], str) else json.dumps(row[c]) for c in columns}


def local_spec(
    name: str,
    path: str | os.PathLike,
    format: str,
    splits: Sequence[str] = ("train",),
    columns: Sequence[str] = (),
) -> DatasetSpec:
    """A DatasetSpec over a user's file; `path` may contain "{split}".

    format    rows                                  rendered as
    alpaca    instruction, input?, output           "{prompt}" -> "{answer}" (alpaca_fields)
    chat      messages                              "{conversation}\n\nAssistant:" -> "{answer}"
    cot       question, answer, chain_of_thought    the CoT collection's templates (cot.py); the
              (TSV without header, or JSONL)        file is TSV when its name ends in .tsv
    jsonl/tsv `columns` (at least two)              "{c1}\n\n{c2}..." -> "{last column}"
    """
    absolute = str(Path(path).absolute())
    if format == "cot":
        from flan_jax.data.templates import cot

        return cot.local_cot_spec(name, absolute, splits)
    if format == "alpaca":
        to_fields, fields = alpaca_fields, ("prompt", "answer")
        template = Template("{prompt}", "{answer}")
        columns = ALPACA_COLUMNS
    elif format == "chat":
        to_fields, fields = chat_fields, ("conversation", "answer")
        template = Template("{conversation}\n\nAssistant:", "{answer}")
        columns = ("messages",)
    elif format in ("jsonl", "tsv"):
        columns = tuple(columns)
        if len(columns) < 2 or len(set(columns)) != len(columns):
            raise LocalFileError(
                f"{path}: a {format} file needs `columns` naming at least two distinct fields "
                f"(the last is the target), got {list(columns)}")
        to_fields, fields = functools.partial(columns_fields, columns=columns), columns
        template = Template("\n\n".join(f"{{{c}}}" for c in columns[:-1]), f"{{{columns[-1]}}}")
        source = LocalSource(absolute, format, columns, tuple(splits))
        return DatasetSpec(
            name=name, cluster="local", sources={name: source}, to_fields=to_fields,
            fields=fields, templates=(template,), answer_field=columns[-1], metric="rouge",
            description=f"{format} file {path}",
        )
    else:
        raise LocalFileError(f"{path}: unknown local format {format!r} (known: "
                             f"{', '.join(LOCAL_SPEC_FORMATS)})")
    source = LocalSource(absolute, format, columns, tuple(splits))
    return DatasetSpec(
        name=name, cluster="local", sources={name: source}, to_fields=to_fields,
        fields=fields, templates=(template,), metric="rouge",
        description=f"{format} file {path}",
    )
