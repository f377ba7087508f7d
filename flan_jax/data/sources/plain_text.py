"""Plain text as a mixture component, trained with the base model's own pretraining objective.

Instruction tuning on narrow data makes a model forget; mixing some pretraining-style text back in
is the standard guard (e.g. the "mixed" setting of Flan 2022's ablations). A plain-text task reads
local documents and emits examples in the ordinary (inputs, targets) contract, so it mixes, packs
and trains like any instruction task:

* objective `lm` (decoder families): inputs empty, targets = a chunk of the document; with the
  `decoder` format every token of the chunk carries loss (next-token prediction).
* objective `span_corruption` (T5): the chunk with ~15% of its tokens dropped in spans of mean
  length 3, each span replaced by a sentinel in the inputs; the targets list the sentinels with the
  dropped spans (Raffel et al. 2020, "Exploring the limits of transfer learning", Sections 3.1.4 and
  3.3.4: noise density 0.15, mean span length 3). Sentinel i is id `vocab_size - 1 - i`, T5's
  extra-id convention, so the vocabulary must have extra ids.

Files: `.txt` (documents separated by blank lines) or `.jsonl` (one object per line with a
non-empty string `text`). Task names: `text.<name>:<objective>`. The span layout of a chunk is
a function of its tokens (a seed from their SHA-256), so every run and process corrupts a chunk
the same way.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from flan_jax.data.sources.local_files import text_problem
from flan_jax.errors import FlanJaxError

COLLECTION = "text"
OBJECTIVES = ("lm", "span_corruption")
NOISE_DENSITY = 0.15
MEAN_NOISE_SPAN_LENGTH = 3.0


class PlainTextError(FlanJaxError):
    """A plain-text file that cannot be read (names the file and line)."""


def read_documents(path: str | Path) -> list[str]:
    """The documents of a `.txt` (blank-line separated) or `.jsonl` (`text` field) file."""
    path = Path(path)
    if not path.is_file():
        raise PlainTextError(f"{path}: no such file")
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise PlainTextError(f"{path}: not UTF-8 text (byte {e.start})") from None
    docs: list[str] = []
    if path.suffix == ".jsonl":
        for lineno, line in enumerate(raw.split("\n"), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise PlainTextError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            text = row.get("text") if isinstance(row, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise PlainTextError(f"{path}:{lineno}: field 'text' must be a non-empty string, "
                                     f"found {type(text).__name__ if text is not None else 'nothing'}")
            problem = text_problem(text)
            if problem:
                raise PlainTextError(f"{path}:{lineno}: field 'text' {problem}")
            docs.append(text)
    elif path.suffix == ".txt":
        for lineno, line in enumerate(raw.split("\n"), 1):  # the text policy of local files
            problem = text_problem(line.removesuffix("\r"))
            if problem:
                raise PlainTextError(f"{path}:{lineno}: field 'text' {problem}")
        docs = [d.strip() for d in raw.replace("\r\n", "\n").split("\n\n") if d.strip()]
    else:
        raise PlainTextError(f"{path}: plain text must be .txt or .jsonl, not {path.suffix or 'no suffix'!r}")
    if not docs:
        raise PlainTextError(f"{path}: no documents (empty file)")
    return docs


def chunks(tokens: Sequence[int], length: int) -> list[np.ndarray]:
    """[t0..t9], length 4 -> [t0..t3], [t4..t7], [t8, t9] (a short last chunk is kept)."""
    arr = np.asarray(tokens, np.int32)
    return [arr[i:i + length] for i in range(0, arr.size, length)]


def _partition(rng: np.random.Generator, total: int, parts: int) -> np.ndarray:
    """`total` split into `parts` positive integers in random order, summing to `total`."""
    cuts = np.sort(rng.choice(np.arange(1, total), size=parts - 1, replace=False)) if parts > 1 else []
    return np.diff(np.concatenate([[0], cuts, [total]])).astype(np.int64)


def span_corruption(tokens: Sequence[int], sentinel_ids: Sequence[int], *,
                    noise_density: float = NOISE_DENSITY,
                    mean_noise_span_length: float = MEAN_NOISE_SPAN_LENGTH) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) int32 of one chunk; the layout is seeded by the chunk's content.

    n tokens -> round(0.15 n) noise tokens (at least 1, at most n - 1) in k = round(noise / 3)
    spans; kept and noise runs alternate, starting with a kept run and ending with a noise run
    (as in T5). Worked example (n = 20: 3 noise tokens in k = 1 span; sentinel 99):

        tokens  = [10, 11, ..., 29]
        inputs  = [10, 11, ..., 26, 99]
        targets = [99, 27, 28, 29]

    Raises FlanJaxError if the chunk has fewer than 2 tokens or there are too few sentinels.
    """
    arr = np.asarray(tokens, np.int32)
    n = arr.size
    if n < 2:
        raise FlanJaxError(f"span corruption needs at least 2 tokens, got {n}")
    num_noise = int(min(max(round(n * noise_density), 1), n - 1))
    num_spans = int(min(max(round(num_noise / mean_noise_span_length), 1), num_noise, n - num_noise))
    if num_spans > len(sentinel_ids):
        raise FlanJaxError(f"span corruption needs {num_spans} sentinel ids, the vocabulary has "
                           f"{len(sentinel_ids)} extra ids (load it with extra_ids=100)")
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(arr.tobytes()).digest()[:8], "little"))
    noise_lengths = _partition(rng, num_noise, num_spans)
    kept_lengths = _partition(rng, n - num_noise, num_spans)
    inputs, targets, pos = [], [], 0
    for i in range(num_spans):
        inputs.append(arr[pos:pos + kept_lengths[i]])
        pos += kept_lengths[i]
        inputs.append(np.asarray([sentinel_ids[i]], np.int32))
        targets += [np.asarray([sentinel_ids[i]], np.int32), arr[pos:pos + noise_lengths[i]]]
        pos += noise_lengths[i]
    return np.concatenate(inputs).astype(np.int32), np.concatenate(targets).astype(np.int32)


def sentinel_ids(vocabulary: Any) -> list[int]:
    """T5's extra ids: sentinel i = vocab_size - 1 - i, one per extra id of the vocabulary."""
    extra = int(getattr(vocabulary, "extra_ids", 0) or 0)
    return [int(vocabulary.vocab_size) - 1 - i for i in range(extra)]


def examples(documents: Iterable[str], vocabulary: Any, objective: str, chunk_length: int
             ) -> Iterator[dict[str, Any]]:
    """Token examples {"inputs", "targets", "inputs_pretokenized", "targets_pretokenized"}."""
    if objective not in OBJECTIVES:
        raise FlanJaxError(f"plain-text objective {objective!r} is not one of {OBJECTIVES}")
    if chunk_length < 2:
        raise FlanJaxError(f"plain-text chunk_length must be >= 2, got {chunk_length}")
    sentinels = sentinel_ids(vocabulary) if objective == "span_corruption" else []
    for doc in documents:
        for chunk in chunks(vocabulary.encode(doc), chunk_length):
            if objective == "lm":
                inputs, targets = np.zeros(0, np.int32), chunk
            elif chunk.size < 2:
                continue
            else:
                inputs, targets = span_corruption(chunk, sentinels)
            yield {"inputs": inputs, "targets": targets, "inputs_pretokenized": "",
                   "targets_pretokenized": vocabulary.decode(chunk.tolist())}


def task_name(name: str, objective: str) -> str:
    return f"{COLLECTION}.{name}:{objective}"


# The objective each feature format's model families were pretrained with (data/features/converters.py
# formats): T5 (enc_dec) span corruption, the decoder families next-token prediction.
MODEL_OBJECTIVES = {"enc_dec": "span_corruption", "decoder": "lm", "prefix_lm": "lm"}


@dataclasses.dataclass(frozen=True)
class TextSource:
    """A `[text.NAME]` table of a mixture file: plain text from local files or a TFDS dataset.

    files: absolute paths (.txt / .jsonl), read in order; or tfds: a TFDS name ("c4/en:3.1.0")
    read from the prepared copy under $TFDS_DATA_DIR (never downloaded), its `tfds_split`'s
    `text_field`. `file` is the mixture file that declared it (for error messages).
    """

    name: str
    objective: str
    files: tuple[str, ...] = ()
    tfds: str | None = None
    tfds_split: str = "train"
    text_field: str = "text"
    chunk_length: int = 256
    file: str = ""

    @property
    def task(self) -> str:
        return task_name(self.name, self.objective)


def _tfds_documents(source: TextSource) -> Iterator[str]:
    """The `text_field` strings of a prepared TFDS split, streamed (c4 does not fit in memory)."""
    import os  # noqa: PLC0415

    import tensorflow_datasets as tfds  # noqa: PLC0415

    where = f"{source.file}: text {source.name!r}, tfds {source.tfds!r}"
    try:
        ds = tfds.load(source.tfds, split=source.tfds_split, download=False, try_gcs=False,
                       data_dir=os.environ.get("TFDS_DATA_DIR"))
    except Exception as e:  # noqa: BLE001 - not prepared, unknown name, bad split: all one line
        raise PlainTextError(f"{where}: cannot read split {source.tfds_split!r} offline "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    for row in tfds.as_numpy(ds):
        if source.text_field not in row:
            raise PlainTextError(f"{where}: no field {source.text_field!r} (fields: {sorted(row)})")
        text = row[source.text_field]
        text = text.decode("utf-8") if isinstance(text, bytes) else str(text)
        if text.strip():
            yield text


def register_text_source(source: TextSource, vocabulary: Any = None) -> str:
    """Register (idempotently) the train split of a mixture's text component; returns its task.

    Local files are all checked now (an error names the file and line before training starts);
    a TFDS source is read lazily, one document at a time.
    """
    if source.tfds is None:
        return register_plain_text_task(source.name, list(source.files), objective=source.objective,
                                        vocabulary=vocabulary, chunk_length=source.chunk_length)
    return register_plain_text_task(source.name, lambda split: _tfds_documents(source),
                                    objective=source.objective, vocabulary=vocabulary,
                                    chunk_length=source.chunk_length, signature=source)


_REGISTERED: dict[str, Any] = {}  # task name -> what it was registered with


def register_plain_text_task(name: str, path: str | Sequence[str] | Callable[[str], Iterable[str]], *,
                             objective: str, vocabulary: Any = None, chunk_length: int = 256,
                             splits: Sequence[str] = ("train",), signature: Any = None) -> str:
    """Register `text.<name>:<objective>` over `path` (may contain "{split}"), a list of files
    (the train split, read in order) or a function split -> documents. Registering the same
    name again with the same arguments is a no-op; with other arguments it replaces the task."""
    import seqio  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from flan_jax.data.tasks.registry import default_vocabulary, output_features  # noqa: PLC0415

    if objective not in OBJECTIVES:
        raise FlanJaxError(f"plain-text task {name!r}: objective {objective!r} is not one of {OBJECTIVES}")
    task = task_name(name, objective)
    vocabulary = default_vocabulary() if vocabulary is None else vocabulary
    key = (signature if signature is not None else (path if isinstance(path, str) else tuple(path)),
           vocabulary, chunk_length, tuple(splits))
    if task in seqio.TaskRegistry.names():
        if _REGISTERED.get(task) == key:
            return task
        seqio.TaskRegistry.remove(task)
    if objective == "span_corruption" and not sentinel_ids(vocabulary):
        raise FlanJaxError(f"plain-text task {name!r}: span corruption needs a vocabulary with extra "
                           f"ids (vocabulary_file.extra_ids = 100)")
    if callable(path):
        documents = path
    elif isinstance(path, str):
        for split in splits:  # validate every file now: errors name the file before training starts
            read_documents(path.replace("{split}", split))

        def documents(split: str) -> list[str]:
            return read_documents(path.replace("{split}", split))
    else:
        files = tuple(path)
        if not files:
            raise PlainTextError(f"plain-text task {name!r}: no files")
        for f in files:
            read_documents(f)
        splits = ("train",)

        def documents(split: str) -> list[str]:
            return [d for f in files for d in read_documents(f)]

    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        return tf.data.Dataset.from_generator(
            lambda: examples(documents(split), vocabulary, objective, chunk_length),
            output_signature={"inputs": tf.TensorSpec([None], tf.int32),
                              "targets": tf.TensorSpec([None], tf.int32),
                              "inputs_pretokenized": tf.TensorSpec([], tf.string),
                              "targets_pretokenized": tf.TensorSpec([], tf.string)})

    seqio.TaskRegistry.add(
        task, source=seqio.FunctionDataSource(dataset_fn, splits=tuple(splits)),
        preprocessors=[seqio.CacheDatasetPlaceholder(), seqio.preprocessors.append_eos_after_trim],
        output_features=output_features(vocabulary))
    _REGISTERED[task] = key
    return task
