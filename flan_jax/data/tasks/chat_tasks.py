"""seqio tasks over chat-message files, rendered with a chat template and per-token loss weights.

    register_chat_task("support", "/data/support_{split}.jsonl", template="chatml")
    -> task "chat.support:chatml" whose examples are
       {"inputs":       int32[n]  everything before the first assistant token,
        "targets":      int32[m]  the rest of the conversation,
        "loss_weights": int32[m]  1 on every assistant turn and its end-of-turn marker, else 0}

The file rows are validated by `sources.read_rows` (file:line errors); the conversation goes
through `chat.render_chat` + `chat.chat_example`, so the mask is the one documented there. The
feature pipeline (`data.pipeline`) carries `loss_weights` into `decoder_loss_weights`, so later user
turns inside the targets are seen but not trained on. A conversation without an assistant turn has
no trained token: the pipeline counts it as zero-loss and drops it.

These tasks have an extra output feature (`loss_weights`), so a seqio mixture may combine chat tasks
with each other but not with the plain inputs/targets tasks of `data.tasks` (seqio requires one
set of output features per mixture). Every template applies uniformly to every conversation.

The template's special strings are resolved against the vocabulary at registration
(`chat.special_token_ids`): a template whose markup the vocabulary cannot hold as single tokens
is refused there, before any file is read (`markup="text"` trains it as plain text instead), and
the template's BOS is left to the feature converter (one BOS per row). `lengths` (the lengths
the rows are cut to) bounds each conversation's tokenization to what the rows keep
(`chat.render_chat`).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from flan_jax.data.features import chat
from flan_jax.data.sources.datasources import ROW_JSON_KEY, make_data_source
from flan_jax.data.templates.spec import LocalSource

COLLECTION = "chat"


def chat_task_name(name: str, template: str) -> str:
    return f"{COLLECTION}.{name}:{template}"


def register_chat_task(
    name: str,
    path: str,
    *,
    template: str = "chatml",
    vocabulary=None,
    splits: Sequence[str] = ("train",),
    special_ids: Mapping[str, int] | None = None,
    markup: str = "special",
    lengths: Mapping[str, int] | None = None,
) -> str:
    """Register (idempotently) a chat task over `path` (may contain "{split}"); returns its name.

    Raises FlanJaxError (naming the template and the string) when the vocabulary lacks one of the
    template's special strings and `markup` is not "text"."""
    import seqio
    import tensorflow as tf

    from flan_jax.data.tasks.registry import default_vocabulary

    chat.get_template(template)  # unknown template names fail here, before any file is read
    task = chat_task_name(name, template)
    if task in seqio.TaskRegistry.names():
        return task
    vocabulary = default_vocabulary() if vocabulary is None else vocabulary
    special_ids = chat.special_token_ids(template, vocabulary, special_ids, markup)
    lengths = None if lengths is None else dict(lengths)
    source = LocalSource(str(Path(path).absolute()), "chat", ("messages",), tuple(splits))
    data_source = make_data_source(source, dataset=name)

    def render(row_json: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        row = json.loads(row_json.decode("utf-8"))
        tokens = chat.render_chat(row["messages"], template, vocabulary, special_ids,
                                  where=f"{path}", markup=markup, lengths=lengths)
        ex = chat.chat_example(tokens)
        return (ex["inputs"].astype(np.int32), ex["targets"].astype(np.int32),
                ex["loss_weights"].astype(np.int32))

    def preprocess(ds: tf.data.Dataset) -> tf.data.Dataset:
        def fn(ex):
            inputs, targets, weights = tf.numpy_function(
                render, [ex[ROW_JSON_KEY]], (tf.int32, tf.int32, tf.int32), stateful=False)
            return {"inputs": tf.ensure_shape(inputs, [None]),
                    "targets": tf.ensure_shape(targets, [None]),
                    "loss_weights": tf.ensure_shape(weights, [None])}

        return ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE)

    seqio.TaskRegistry.add(
        task,
        source=data_source,
        preprocessors=[preprocess],
        output_features={
            "inputs": seqio.Feature(vocabulary, add_eos=False),
            "targets": seqio.Feature(vocabulary, add_eos=False),
            "loss_weights": seqio.Feature(seqio.PassThroughVocabulary(1), add_eos=False,
                                          dtype=tf.int32, required=False),
        },
        metric_fns=[],
    )
    return task
