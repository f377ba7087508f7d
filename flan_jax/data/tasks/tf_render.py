"""Rendering inside tf.data: raw source examples -> rendered text examples with metadata.

Decoded examples are grouped `RENDER_BATCH` at a time (`ragged_batch`, so variable-length TFDS
features become ragged), and one `tf.numpy_function` per group rebuilds each nested example,
applies `pyvalues.to_python`, the dataset's `to_fields` and the variant's `ExampleRenderer`;
the results are unbatched. Examples whose `to_fields` or renderer returns None are dropped.

    raw {"premise": b"A cat sat.", "hypothesis": b"An animal sat.", "label": 0}
    -> {"inputs": b'A cat sat.\nDoes this imply ...', "targets": b"yes", "task": b"flan2021.rte:zs_opt",
        "cluster": b"nli", "variant": b"zs_opt", "template_index": 3, "num_shots": 0,
        "options": [b"yes", b"no"], "answer": b"yes"}
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from flan_jax.data.sources.pyvalues import to_python
from flan_jax.data.sources.datasources import ROW_JSON_KEY
from flan_jax.data.templates.spec import DatasetSpec, Fields
from flan_jax.data.templates.variants import ExampleRenderer


def raw_to_fields(spec: DatasetSpec, raw: Mapping[str, Any]) -> Fields | None:
    """A decoded source example -> template fields (None: the dataset drops it)."""
    if set(raw) == {ROW_JSON_KEY}:
        value = raw[ROW_JSON_KEY]
        row = json.loads(value.decode("utf-8") if isinstance(value, bytes) else to_python(value))
    else:
        row = to_python(dict(raw))
    return spec.to_fields(row)


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
        s = renderer.setting
        wants_pool = s.kind in ("slot", "mix", "x") or (s.kind == "eval" and renderer.config.num_shots)
        pool = load_pool() if wants_pool else []
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
