"""The parsing of mixture files' tables (mixtures.py reads the files): each table checked and
turned into MixtureDecls (mixture_types.py) or a TextSource.

    _parse_mixture("m", {"include": [{"task": "a.b:zs_opt"}]}, "x.toml")
        -> MixtureDecl("m", "x.toml", "examples_proportional", ({"task": "a.b:zs_opt"},))
    _expand_family("f", {"collection": "flan_mini", "clusters": ["A", "B"]}, "x.toml")
        -> f_no_A, f_A_eval, f_no_B, f_B_eval

Every bad table raises MixtureError naming the file and the table or include entry (an unknown
key, a rate or size_source not in RATE_KINDS / SIZE_SOURCES, a weight outside a weights mixture,
a text file that does not exist, ...). `_attach_texts` and `_attach_locals` join `{text = NAME}`
and `{local = NAME}` entries to the tables they name.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flan_jax.data.audit import audit_filter
from flan_jax.data.mixing.mixture_types import RATE_KINDS, SIZE_SOURCES, MixtureDecl, MixtureError
from flan_jax.data.sources import plain_text
from flan_jax.data.sources.plain_text import TextSource
from flan_jax.data.tasks import registry as tasks_lib
from flan_jax.data.templates.spec import LocalSource

ENTRY_KINDS = ("task", "mixture", "local", "release", "collection", "text")
TEXT_KEYS = {"files", "tfds", "tfds_split", "text_field", "objective", "chunk_length"}
SELECTOR_KEYS = {"collection", "variants", "clusters", "exclude_clusters", "datasets", "weight"}


def _positive(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise MixtureError(f"{where}: {what} must be a positive number, got {value!r}")
    return value


def _parse_mixture(name: str, body: Mapping[str, Any], file: str) -> MixtureDecl:
    where = f"{file}: mixture {name!r}"
    unknown_keys = set(body) - {"description", "rate", "cap", "temperature", "include", "size_source",
                                "drop_flagged", "audit_eval", "audit_eval_split"}
    if unknown_keys:
        raise MixtureError(f"{where}: unknown keys {sorted(unknown_keys)}")
    rate = body.get("rate", "examples_proportional")
    if rate not in RATE_KINDS:
        raise MixtureError(f"{where}: rate {rate!r} is not one of {', '.join(RATE_KINDS)}")
    size_source = body.get("size_source", "data")
    if size_source not in SIZE_SOURCES:
        raise MixtureError(f"{where}: size_source {size_source!r} is not one of {', '.join(SIZE_SOURCES)}")
    include = body.get("include")
    if not include or not isinstance(include, list):
        raise MixtureError(f"{where}: 'include' must be a non-empty list of entries")
    for i, entry in enumerate(include):
        at = f"{where}, include[{i}]"
        if not isinstance(entry, dict):
            raise MixtureError(f"{at}: expected a table like {{task = \"...\"}}, got {entry!r}")
        kinds = [k for k in ENTRY_KINDS if k in entry]
        if len(kinds) != 1:
            raise MixtureError(f"{at}: give exactly one of {', '.join(ENTRY_KINDS)}: {entry}")
        if rate != "weights" and ("weight" in entry or kinds[0] == "mixture"):
            what = "a weight" if "weight" in entry else "a mixture entry"
            raise MixtureError(f"{at}: {what} needs rate = \"weights\" (rate {rate!r} sets shares "
                               "from task sizes and would ignore it)")
        if kinds[0] == "text":
            _check_text_entry(entry, rate, at)
            continue
        if "share" in entry:
            raise MixtureError(f"{at}: 'share' belongs to text entries ({{text = NAME, share = 0.1}})")
        if "weight" in entry:
            _positive(entry["weight"], "weight", at)
        elif rate == "weights":
            raise MixtureError(f"{at}: rate = \"weights\" needs a weight on every entry")
        if kinds[0] in ("collection", "release"):
            allowed = SELECTOR_KEYS if kinds[0] == "collection" else {"release", "variants", "weight"}
            extra = set(entry) - allowed
            if extra:
                raise MixtureError(f"{at}: unknown selector keys {sorted(extra)}")
        elif set(entry) - {kinds[0], "weight"}:
            raise MixtureError(f"{at}: unknown keys {sorted(set(entry) - {kinds[0], 'weight'})}")
    cap = body.get("cap")
    if cap is not None:
        cap = int(_positive(cap, "cap", where))
    temperature = _positive(body.get("temperature", 1.0), "temperature", where)
    drop = body.get("drop_flagged", [])
    if not isinstance(drop, list) or any(k not in audit_filter.DROP_KINDS for k in drop):
        raise MixtureError(f"{where}: field 'drop_flagged' must be a list of {', '.join(audit_filter.DROP_KINDS)}, "
                           f"got {drop!r}")
    audit_eval = body.get("audit_eval")
    if audit_eval is not None and (not isinstance(audit_eval, str) or not audit_eval):
        raise MixtureError(f"{where}: field 'audit_eval' must be a mixture or task name, got {audit_eval!r}")
    if "contaminated" in drop and not audit_eval:
        raise MixtureError(f"{where}: drop_flagged \"contaminated\" needs field 'audit_eval' (the "
                           "evaluation mixture or task whose examples define contamination)")
    eval_split = body.get("audit_eval_split", "validation")
    if not isinstance(eval_split, str) or not eval_split:
        raise MixtureError(f"{where}: field 'audit_eval_split' must be a split name, got {eval_split!r}")
    return MixtureDecl(name, file, rate, tuple(include), cap, float(temperature),
                       body.get("description", ""), size_source, tuple(dict.fromkeys(drop)),
                       audit_eval, eval_split)


def _check_text_entry(entry: Mapping[str, Any], rate: str, at: str) -> None:
    """`{text = NAME, share = s}` (0 < s < 1: that fraction of the examples, the other entries
    sharing the rest by the mixture's rate), or `{text = NAME, weight = w}` in a weights mixture."""
    extra = set(entry) - {"text", "share", "weight"}
    if extra:
        raise MixtureError(f"{at}: unknown keys {sorted(extra)}")
    if rate == "weights":
        if "weight" not in entry or "share" in entry:
            raise MixtureError(f"{at}: in a rate = \"weights\" mixture a text entry takes a weight, not a share")
        _positive(entry["weight"], "weight", at)
        return
    share = entry.get("share")
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1:
        raise MixtureError(f"{at}: a text entry needs share = a number between 0 and 1 (the fraction "
                           f"of examples drawn from it), got {share!r}")


def _parse_text(name: str, body: Mapping[str, Any], file: str) -> TextSource:
    """A `[text.NAME]` table -> TextSource. Relative `files` are relative to the mixture file;
    every file must exist now (the error names it)."""
    where = f"{file}: text {name!r}"
    unknown_keys = set(body) - TEXT_KEYS
    if unknown_keys:
        raise MixtureError(f"{where}: unknown keys {sorted(unknown_keys)} (known: {', '.join(sorted(TEXT_KEYS))})")
    objective = body.get("objective")
    if objective not in plain_text.OBJECTIVES:
        raise MixtureError(f"{where}: field 'objective' must be one of {', '.join(plain_text.OBJECTIVES)} "
                           f"(span_corruption for T5, lm for decoders), got {objective!r}")
    chunk_length = body.get("chunk_length", 256)
    if isinstance(chunk_length, bool) or not isinstance(chunk_length, int) or chunk_length < 2:
        raise MixtureError(f"{where}: field 'chunk_length' must be an integer >= 2, got {chunk_length!r}")
    files, tfds = body.get("files"), body.get("tfds")
    if (files is None) == (tfds is None):
        raise MixtureError(f"{where}: give one of 'files' (local .txt/.jsonl files) or 'tfds' (a dataset name)")
    for key in ("tfds", "tfds_split", "text_field"):
        if key in body and (not isinstance(body[key], str) or not body[key]):
            raise MixtureError(f"{where}: field {key!r} must be a non-empty string, got {body[key]!r}")
    paths: tuple[str, ...] = ()
    if files is not None:
        files = [files] if isinstance(files, str) else files
        if not isinstance(files, list) or not files or not all(isinstance(f, str) and f for f in files):
            raise MixtureError(f"{where}: field 'files' must be a path or a non-empty list of paths")
        base = Path(file).parent
        paths = tuple(str(p if p.is_absolute() else base / p) for p in map(Path, files))
        for p in paths:
            if not Path(p).is_file():
                raise MixtureError(f"{where}: no such file {p}")
            if Path(p).suffix not in (".txt", ".jsonl"):
                raise MixtureError(f"{where}: {p}: plain text must be .txt or .jsonl")
    return TextSource(name, objective, paths, tfds, body.get("tfds_split", "train"),
                      body.get("text_field", "text"), chunk_length, file)


def _attach_texts(decls: Mapping[str, MixtureDecl], texts: Mapping[str, TextSource]) -> dict[str, MixtureDecl]:
    """Each `{text = NAME}` entry gains `source`: the TextSource it names (resolve names the
    leaf task `text.NAME:<objective>` from it)."""
    out = {}
    for name, decl in decls.items():
        include = []
        for i, entry in enumerate(decl.include):
            if "text" in entry:
                if entry["text"] not in texts:
                    raise MixtureError(f"{decl.file}: mixture {name!r}, include[{i}]: "
                                       f"{tasks_lib.unknown('text component', str(entry['text']), list(texts)).args[0]}"
                                       " (declare it in a [text.NAME] table)")
                entry = {**entry, "source": texts[entry["text"]]}
            include.append(entry)
        out[name] = dataclasses.replace(decl, include=tuple(include))
    return out


def _expand_family(name: str, body: Mapping[str, Any], file: str) -> list[MixtureDecl]:
    """A held-out-cluster family -> `<name>_no_<C>` (train) and `<name>_<C>_eval` per cluster C.

    `exclude_together = {A = ["B"]}` also drops cluster B from training when A is held out: the
    table of which clusters leave together is data in the family's file (for FLAN 2021 it is the
    rule of google-research/FLAN flan/task_splits.py, generate_inter_cluster_splits).
    `train_variants`, `cap`, `rate`, `temperature` and `size_source` shape the train mixtures.
    """
    where = f"{file}: family {name!r}"
    collection = body.get("collection")
    clusters = body.get("clusters")
    if not collection or not clusters:
        raise MixtureError(f"{where}: needs 'collection' and 'clusters'")
    together = body.get("exclude_together", {})
    for key, values in together.items():
        for c in [key, *values]:
            if c not in clusters:
                raise MixtureError(f"{where}: exclude_together names unknown cluster {c!r}")
    out = []
    for held in clusters:
        excluded = [held, *together.get(held, [])]
        out.append(MixtureDecl(
            f"{name}_no_{held}", file, body.get("rate", "examples_proportional"),
            ({"collection": collection, "variants": body.get("train_variants", ["zs_opt"]),
              "exclude_clusters": excluded},),
            body.get("cap"), float(body.get("temperature", 1.0)),
            f"{collection} training mixture without {', '.join(excluded)}",
            body.get("size_source", "data"),
        ))
        out.append(MixtureDecl(
            f"{name}_{held}_eval", file, "equal",
            ({"collection": collection, "variants": [body.get("eval_variant", "eval")],
              "clusters": [held]},),
            description=f"{collection} evaluation mixture of the held-out cluster {held}",
        ))
    return out


def _attach_locals(decls: Mapping[str, MixtureDecl], locals_: Mapping[str, LocalSource]) -> dict[str, MixtureDecl]:
    """Each `{local = NAME}` entry naming a declared `[local.NAME]` gains `local_source` (its
    LocalSource), so the rates size it by its training file (mixture_sizes: the line count)."""
    return {name: dataclasses.replace(decl, include=tuple(
        {**e, "local_source": locals_[e["local"]]} if "local" in e and e["local"] in locals_ else e
        for e in decl.include)) for name, decl in decls.items()}
