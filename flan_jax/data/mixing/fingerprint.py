"""What a mixture *is*, as a JSON-able fingerprint: its tasks and shares, how each task renders,
and the files it reads. train.py stores it in every checkpoint and refuses to resume when it
changed, so a mixture redefined under the same name is not silently continued.

    describe("m")   # mixtures/x.toml: [mixture.m] include = [{ local = "a" }]
    -> {"tasks": {"local.a:zs_noopt": 1.0},
        "rendering": {"local.a:zs_noopt": "3f2a9c0d1e7b6a54"},        # sha256 of the definition
        "files": {"/data/a/train.jsonl": "812 bytes, sha256 0c1d2e3f4a5b6c7d"},
        "options": {"m": "rate examples_proportional, cap None, ..."}}

What each part covers:
  tasks      every leaf task and its share of the examples (the mixture's rates as resolved:
             entries, caps, temperatures, weights, and the sizes they were computed from).
  rendering  per task: the dataset's templates (zero-shot, few-shot, CoT), fields, answer
             options, metric, its sources (TFDS name and version, procedural split sizes and
             seeds, the generator's and field mapping's qualified names), the variant, the render
             config (seed, shots, pool size, length limit, suffix) and the vocabulary file.
  files      every local file the training split reads (local collections, catalogue datasets
             read from FLAN_JAX_DATA_DIR, Flan 2022 release files, plain-text components): size
             and SHA-256 of the content (files over `HASH_LIMIT`: size and mtime, so copying such
             a file elsewhere reads as a change; `train.allow_data_change` accepts it). The same
             contents under other paths (a moved data folder) are no change.
  options    each declared mixture's own options (rate kind, cap, temperature, size source, the
             audit's drop_flagged / audit_eval), which the shares alone may not show.

Not covered: the code of a procedural generator or a field mapping (their names are), a TFDS
dataset's prepared files (its name and version are), and a task registered by other code than
flan_jax's register functions (its name is). `differences(stored, now)` turns two fingerprints
into short phrases naming what changed, for the trainer's one-line refusal.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HASH_LIMIT = 256 * 2**20  # bytes; larger files are identified by size and mtime (hashing costs a read)
SHARE_DIGITS = 12  # shares are stored rounded (float noise across processes must not read as a change)


# ----------------------------------------------------------------------------- pieces


def file_signature(path: str | os.PathLike) -> str:
    """'812 bytes, sha256 0c1d2e3f4a5b6c7d' (16 hex digits of the content's SHA-256), or for files
    over HASH_LIMIT '5368709120 bytes, mtime 1733550000123456789'; 'missing' when absent. A
    folder (a `save_to_disk` dataset) is signed by its files' relative paths and signatures:
    '3 files, sha256 ...'."""
    p = Path(path)
    if p.is_dir():
        entries = [f"{f.relative_to(p)}: {file_signature(f)}" for f in sorted(p.rglob("*")) if f.is_file()]
        return f"{len(entries)} files, sha256 {hashlib.sha256(chr(10).join(entries).encode()).hexdigest()[:16]}"
    try:
        st = p.stat()
    except OSError:
        return "missing"
    if st.st_size > HASH_LIMIT:
        return f"{st.st_size} bytes, mtime {st.st_mtime_ns}"
    h = hashlib.sha256()
    try:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as e:
        return f"unreadable ({e.strerror})"
    return f"{st.st_size} bytes, sha256 {h.hexdigest()[:16]}"


def _callable_name(fn: Any) -> str:
    """A process-independent name for a function (never its repr, which holds an address)."""
    if isinstance(fn, functools.partial):
        return f"partial({_callable_name(fn.func)}, {fn.args!r}, {sorted(fn.keywords.items())!r})"
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def _plain(value: Any) -> Any:
    """JSON-able form of spec pieces: dataclasses as dicts, callables by name."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if callable(value):
        return _callable_name(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def _vocabulary_name(vocabulary: Any) -> Any:
    path = getattr(vocabulary, "sentencepiece_model_file", None) or getattr(vocabulary, "path", None)
    # its content, not where it lies (a cache written elsewhere is still current)
    return {"signature": file_signature(path), "extra_ids": getattr(vocabulary, "extra_ids", None)} if path else \
        type(vocabulary).__name__


# ----------------------------------------------------------------------------- one task


def _local_files(source: Any, split: str, data_dir: str | None, dataset: str) -> list[str]:
    """The files a LocalSource reads for training: the split's and the few-shot pool's."""
    from flan_jax.data.sources import datasources

    splits = tuple(source.splits)
    wanted = [s for s in dict.fromkeys((split, "train" if "train" in splits else splits[0])) if s in splits]
    out = []
    for s in wanted:
        try:
            out.append(str(datasources.local_path(source, s, data_dir, dataset)))
        except Exception:  # noqa: BLE001 - no data dir: registration reports that, not this
            out.append(source.file_pattern.replace("{split}", s))
    return out


def _registered_task(name: str, split: str) -> tuple[str, list[str]] | None:
    """(rendering digest, files) of a task registered by `register_dataset_tasks`, else None."""
    from flan_jax.data.tasks import registry
    from flan_jax.data.templates import variants
    from flan_jax.data.templates.spec import LocalSource, TfdsSource

    signature = registry._REGISTERED.get(name)  # noqa: SLF001 - the registration's own record
    if signature is None:
        return None
    spec, variant, vocabulary, config, data_dir, tfds_data_dir, templates = signature
    files: list[str] = []
    sources = {}
    for source_name, source in spec.sources.items():
        source = registry.resolve_source(source, data_dir, tfds_data_dir)
        if isinstance(source, LocalSource):
            files += _local_files(source, split, data_dir, spec.name)
            sources[source_name] = {"format": source.format, "columns": list(source.columns)}
        elif isinstance(source, TfdsSource):
            sources[source_name] = {"tfds": source.tfds_name, "splits": _plain(source.splits)}
        else:
            sources[source_name] = _plain(source)
    definition = {
        "dataset": spec.name, "cluster": spec.cluster, "fields": list(spec.fields),
        "answer_field": spec.answer_field, "options": _plain(spec.options),
        "options_field": spec.options_field, "metric": spec.metric, "to_fields": _callable_name(spec.to_fields),
        "templates": _plain(templates), "fewshot_templates": _plain(spec.fewshot_templates),
        "cot_templates": _plain(spec.cot_templates), "sources": sources, "variant": variant,
        "config": _plain(variants.rendering_identity(config, variant, templates)),
        "vocabulary": _vocabulary_name(vocabulary),
    }
    return _digest(definition), files


def _release_task(name: str, data_dir: str | None) -> tuple[str, list[str]] | None:
    from flan_jax.data.sources import flan2022_readers

    collection, _, rest = name.partition(".")
    if collection not in flan2022_readers.RELEASES:
        return None
    source = rest.partition(":")[0]
    found = flan2022_readers.read_collection(collection, data_dir) or ()
    paths = [str(t.path) for t in found if flan2022_readers.dataset_spec(t).name == source]
    return _digest({"release": collection, "task": name, "template": _plain(
        flan2022_readers.TEMPLATES.get(collection))}), paths


def _text_task(source: Any) -> tuple[str, list[str]]:
    return _digest(_plain(dataclasses.replace(source, file=""))), list(source.files)


# ----------------------------------------------------------------------------- the whole mixture


def describe(name: str, *, split: str = "train", data_dir: str | None = None,
             paths: Sequence[str | os.PathLike] | None = None) -> dict[str, Any]:
    """The fingerprint of mixture or task `name` (see the module docstring). Call it after the
    mixture is registered (train.py does): rendering digests come from the registrations.
    `paths`: the mixture files (default: mixtures.mixture_files())."""
    from flan_jax.data.mixing import mixtures

    options: dict[str, str] = {}
    texts: dict[str, Any] = {}
    if ":" in name and "." in name:
        shares = {name: 1.0}
    else:
        decls, _ = mixtures.load_files(paths)
        leaves = mixtures.resolve(name, decls, data_dir)
        shares = {leaf.task: round(float(leaf.share), SHARE_DIGITS) for leaf in leaves}
        for decl in _declared(name, decls):
            options[decl.name] = (f"rate {decl.rate}, cap {decl.cap}, temperature {decl.temperature}, "
                                  f"size_source {decl.size_source}, drop_flagged {list(decl.drop_flagged)}, "
                                  f"audit_eval {decl.audit_eval}/{decl.audit_eval_split}")
            texts.update({e["source"].task: e["source"] for e in decl.include if "text" in e})
    rendering: dict[str, str] = {}
    files: dict[str, str] = {}
    for task in sorted(shares):
        found = (_text_task(texts[task]) if task in texts else
                 _registered_task(task, split) or _release_task(task, data_dir) or ("registered by other code", []))
        rendering[task] = found[0]
        for path in found[1]:
            files[path] = file_signature(path)
    return {"tasks": dict(sorted(shares.items())), "rendering": rendering, "files": dict(sorted(files.items())),
            "options": options}


def _declared(name: str, decls: Mapping[str, Any]) -> list[Any]:
    """`name`'s declaration and those of the mixtures it includes, depth first, each once."""
    out, stack = [], [name]
    while stack:
        n = stack.pop()
        if n in decls and all(d.name != n for d in out):
            out.append(decls[n])
            stack += [e["mixture"] for e in decls[n].include if "mixture" in e]
    return out


def _names(items: Sequence[str], limit: int = 3) -> str:
    return ", ".join(items[:limit]) + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def differences(stored: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """Short phrases naming what changed between two fingerprints ([] when equal):

        {"tasks": {"local.a:zs_noopt": 1.0}} vs {"tasks": {"local.b:zs_noopt": 1.0}}
        -> ["tasks removed: local.a:zs_noopt", "tasks added: local.b:zs_noopt"]
    """
    out = []
    old_tasks, new_tasks = dict(stored.get("tasks", {})), dict(now.get("tasks", {}))
    removed = sorted(set(old_tasks) - set(new_tasks))
    added = sorted(set(new_tasks) - set(old_tasks))
    if removed:
        out.append(f"tasks removed: {_names(removed)}")
    if added:
        out.append(f"tasks added: {_names(added)}")
    shares = [f"{t} {old_tasks[t]:.4g} -> {new_tasks[t]:.4g}" for t in sorted(set(old_tasks) & set(new_tasks))
              if abs(float(old_tasks[t]) - float(new_tasks[t])) > 10.0 ** -SHARE_DIGITS]
    if shares:
        out.append(f"shares changed: {_names(shares)}")
    old_r, new_r = stored.get("rendering", {}), now.get("rendering", {})
    rendered = sorted(t for t in set(old_r) & set(new_r) if old_r[t] != new_r[t])
    if rendered:
        out.append(f"templates or rendering changed: {_names(rendered)}")
    old_f, new_f = stored.get("files", {}), now.get("files", {})
    if sorted(old_f.values()) == sorted(new_f.values()):
        old_f = new_f  # the same contents read from another place (a moved data folder): no change
    for path in sorted(set(old_f) | set(new_f)):
        if old_f.get(path) != new_f.get(path):
            if path not in new_f:
                out.append(f"file {path} no longer read")
            elif path not in old_f:
                out.append(f"file {path} now read")
            else:
                out.append(f"file {path} changed ({old_f[path]} then, {new_f[path]} now)")
    old_o, new_o = stored.get("options", {}), now.get("options", {})
    changed = sorted(n for n in set(old_o) | set(new_o) if old_o.get(n) != new_o.get(n))
    if changed:
        out.append(f"mixture options changed: {_names(changed)}")
    return out
