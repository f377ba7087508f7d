"""The on-disk cache of rendered, tokenized tasks: ArrayRecord files plus a manifest per task.

`flan-jax cache MIXTURE --out DIR` renders and tokenizes every task of a mixture once, so training
reads token arrays at random positions instead of re-rendering the stream (data/cache/cached_pipeline.py).

Layout (one folder per task; task names are folder-safe: '.' and ':' are kept):

    DIR/flan_mini.mini_add:zs_noopt/
        train-00000-of-00001.array_record     one record per example (`encode_example`)
        manifest.json

A record holds the example as seqio yields it with `sequence_length=None` (tokenized, EOS appended,
untrimmed): the int32 fields `inputs`, `targets` and, for chat tasks, `loss_weights`. Lengths and
packing are applied when reading, so one cache serves every feature length.

Manifest (`manifest.json`), checked before any record is read:

    {"format_version": 1, "task": "...", "vocabulary": "<sha256 of the sentencepiece model>",
     "templates": "<sha256 of the task's rendering definition>",
     "splits": {"train": {"num_examples": 2000, "files": [...], "max_inputs": 61, "max_targets": 9,
                          "target_tokens": 8123}}}

A cache whose vocabulary or templates fingerprint differs from the task the run registers is
stale and refused with an error naming the field (`check_manifest`); so is one whose source
files changed since it was written (`"data"`: per split the task's fingerprint,
data/mixing/fingerprint.py, with the size and SHA-256 of every local file it reads).

Interrupted writes (a killed `flan-jax cache`): each file is written under a temporary name and
renamed, the manifest last; a task being rewritten loses its old manifest before any new file
is written. So a task directory either has a manifest describing exactly its files, or none
(not cached: a run refuses it in one line). Writing again resumes: a task whose manifest is
current (same vocabulary, templates, source files, splits and `max_examples`) is kept as it is.

Writers: `write_task` (one task, one process), `cache_tasks` (a process pool: tasks are the unit of
work, each written by one worker) and `beam_cache.py` (the same `write_task` as an Apache Beam
pipeline, for many machines).
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from flan_jax.errors import FlanJaxError

FORMAT_VERSION = 1
FIELDS = ("inputs", "targets", "loss_weights")
MANIFEST = "manifest.json"
MAX_RECORDS_PER_FILE = 200_000


class StaleCacheError(FlanJaxError):
    """A cached task whose manifest does not match what the run would render."""


def encode_example(example: Mapping[str, Any]) -> bytes:
    """{"inputs": [7, 8], "targets": [3, 1]} -> b'<u32 count><per field: u8 id, u32 n, int32[n]>'.

    Worked example: fields inputs=[7, 8], targets=[3, 1] ->
        count 2 | id 0, n 2, [7, 8] | id 1, n 2, [3, 1]   (little-endian; 29 bytes)
    """
    present = [(i, np.asarray(example[f], np.int32)) for i, f in enumerate(FIELDS) if f in example]
    out = [struct.pack("<I", len(present))]
    for field_id, arr in present:
        out.append(struct.pack("<BI", field_id, arr.size))
        out.append(arr.astype("<i4").tobytes())
    return b"".join(out)


def decode_example(data: bytes) -> dict[str, np.ndarray]:
    """The inverse of `encode_example`."""
    (count,), off = struct.unpack_from("<I", data, 0), 4
    out = {}
    for _ in range(count):
        field_id, n = struct.unpack_from("<BI", data, off)
        off += 5
        out[FIELDS[field_id]] = np.frombuffer(data, "<i4", n, off).astype(np.int32)
        off += 4 * n
    return out


def vocabulary_fingerprint(vocabulary: Any) -> str:
    """sha256 of the sentencepiece model bytes (plus the extra-id count)."""
    model = getattr(vocabulary, "sp_model", None)
    if model is None:
        raise FlanJaxError(f"cache: cannot fingerprint vocabulary {type(vocabulary).__name__}")
    extra = int(getattr(vocabulary, "extra_ids", 0) or 0)
    return hashlib.sha256(model + f"|extra_ids={extra}".encode()).hexdigest()


def templates_fingerprint(task_name: str) -> str:
    """sha256 of what defines the task's rendered text: the dataset's templates, options, fields,
    the variant and the render settings (catalogue tasks); else the task's name only (local files
    are not fingerprinted: re-cache after editing one)."""
    signature = _catalogue_identity(task_name)
    return hashlib.sha256(json.dumps(signature, sort_keys=True, default=str).encode()).hexdigest()


def _catalogue_identity(task_name: str) -> Any:
    from flan_jax.data.tasks import registry as tasks  # noqa: PLC0415
    from flan_jax.data.templates import variants  # noqa: PLC0415

    registered = getattr(tasks, "_REGISTERED", {}).get(task_name)
    if registered is None:
        return {"task": task_name}
    spec, variant, _vocab, config, *_rest, templates = registered
    config = variants.rendering_identity(config, variant, templates)
    return {"task": task_name, "variant": variant, "config": repr(config),
            "templates": [(t.inputs, t.targets, t.inverted) for t in templates],
            "options": spec.options, "options_field": spec.options_field, "fields": spec.fields,
            "answer_field": spec.answer_field}


def task_dir(cache_dir: str | os.PathLike, task_name: str) -> Path:
    return Path(cache_dir) / task_name.replace("/", "_")


def write_task(task_name: str, cache_dir: str, splits: Sequence[str] = ("train",),
               max_examples: int | None = None) -> dict[str, Any]:
    """Render + tokenize one registered seqio task into the cache; returns its manifest.

    Files are written under a temporary name and renamed, and the manifest last, so an
    interrupted job never leaves a cache that looks complete.
    """
    import seqio  # noqa: PLC0415
    from array_record.python import array_record_module as ar  # noqa: PLC0415

    task = seqio.get_mixture_or_task(task_name)
    out = task_dir(cache_dir, task_name)
    out.mkdir(parents=True, exist_ok=True)
    splits = [s for s in splits if s in task.splits]
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION, "task": task_name,
        "vocabulary": vocabulary_fingerprint(task.output_features["targets"].vocabulary),
        "templates": templates_fingerprint(task_name), "max_examples": max_examples,
        "data": {split: data_fingerprint(task_name, split) for split in splits}, "splits": {}}
    current = _current_manifest(out, manifest)
    if current is not None:  # written completely by an earlier (maybe interrupted) run
        return current
    (out / MANIFEST).unlink(missing_ok=True)  # an old manifest never describes the new files
    for split in splits:
        ds = task.get_dataset(None, split=split, shuffle=False, use_cached=False, try_in_mem_cache=False)
        if max_examples:
            ds = ds.take(max_examples)
        records = [encode_example({f: ex[f] for f in FIELDS if f in ex}) for ex in ds.as_numpy_iterator()]
        stats = _split_stats(records)
        num_files = max(1, -(-len(records) // MAX_RECORDS_PER_FILE))
        files = []
        for i in range(num_files):
            name = f"{split}-{i:05d}-of-{num_files:05d}.array_record"
            tmp = out / (name + ".tmp")
            writer = ar.ArrayRecordWriter(str(tmp), "group_size:1")
            for rec in records[i * MAX_RECORDS_PER_FILE:(i + 1) * MAX_RECORDS_PER_FILE]:
                writer.write(rec)
            writer.close()
            tmp.replace(out / name)
            files.append(name)
        manifest["splits"][split] = {"num_examples": len(records), "files": files, **stats}
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(out / MANIFEST)
    return manifest


def data_fingerprint(task_name: str, split: str) -> dict[str, Any]:
    """The task's fingerprint for `split` (rendering digest and source files' size + SHA-256)."""
    from flan_jax.data.mixing import fingerprint  # noqa: PLC0415

    return fingerprint.describe(task_name, split=split)


def _current_manifest(out: Path, expected: Mapping[str, Any]) -> dict[str, Any] | None:
    """The task directory's manifest when it matches `expected` (everything but the splits'
    contents) and lists every expected split with its files present; else None."""
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or any(manifest.get(k) != v for k, v in expected.items() if k != "splits"):
        return None
    splits = manifest.get("splits", {})
    if set(splits) != set(expected["data"]):
        return None
    if not all((out / f).is_file() for s in splits.values() for f in s.get("files", ())):
        return None
    return manifest


def _split_stats(records: Sequence[bytes]) -> dict[str, int]:
    max_in = max_t = tokens = 0
    for rec in records:
        ex = decode_example(rec)
        max_in = max(max_in, ex.get("inputs", np.zeros(0)).size)
        max_t = max(max_t, ex["targets"].size)
        tokens += ex["targets"].size
    return {"max_inputs": max_in, "max_targets": max_t, "target_tokens": tokens}


def load_manifest(cache_dir: str | os.PathLike, task_name: str) -> dict[str, Any] | None:
    """The task's manifest, or None if the task is not cached; a corrupt one is an error."""
    path = task_dir(cache_dir, task_name) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StaleCacheError(f"{path}: not a readable manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise StaleCacheError(f"{path}: format_version {manifest.get('format_version')!r} is not "
                              f"{FORMAT_VERSION} (re-run flan-jax cache)")
    return manifest


def check_manifest(manifest: Mapping[str, Any], *, task_name: str, vocabulary: Any, split: str,
                   where: str) -> None:
    """Refuse a stale cache: the field that differs is named (vocabulary, templates, split)."""
    expected = {"task": task_name, "vocabulary": vocabulary_fingerprint(vocabulary),
                "templates": templates_fingerprint(task_name)}
    for field, value in expected.items():
        if manifest.get(field) != value:
            raise StaleCacheError(
                f"{where}: cached task {task_name!r} is stale: field {field!r} differs from this run's "
                f"({str(manifest.get(field))[:16]} vs {str(value)[:16]}); re-run flan-jax cache")
    stored = manifest.get("data", {}).get(split)
    if stored is not None:  # caches written before source files were fingerprinted lack it
        from flan_jax.data.mixing import fingerprint  # noqa: PLC0415

        changed = fingerprint.differences(stored, data_fingerprint(task_name, split))
        if changed:
            raise StaleCacheError(f"{where}: cached task {task_name!r} is stale: {'; '.join(changed)}; "
                                  "re-run flan-jax cache")
    if split not in manifest.get("splits", {}):
        raise StaleCacheError(f"{where}: cached task {task_name!r} has no split {split!r} "
                              f"(cached: {sorted(manifest.get('splits', {}))})")


def cache_tasks(task_names: Sequence[str], cache_dir: str, *, splits: Sequence[str] = ("train",),
                workers: int = 1, max_examples: int | None = None,
                register: Any = None) -> list[dict[str, Any]]:
    """Write every task with a pool of `workers` processes (spawned: each registers the tasks
    again through `register()`, a picklable function, before writing its share)."""
    if workers <= 1:
        return [write_task(t, cache_dir, splits, max_examples) for t in task_names]
    import concurrent.futures as cf  # noqa: PLC0415
    import multiprocessing as mp  # noqa: PLC0415

    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                initializer=register) as pool:
        return list(pool.map(write_task, task_names, [cache_dir] * len(task_names),
                             [tuple(splits)] * len(task_names), [max_examples] * len(task_names)))
