"""Mixtures declared in TOML files under `mixtures/` (one family per file), resolved to task shares.

A file declares mixtures, held-out-cluster families and local collections:

    [mixture.flan_mini_all]
    description = "every flan-mini task, zero-shot with and without options"
    rate = "examples_proportional"      # | "temperature" (with temperature=T) | "equal" | "weights"
    cap = 3000                          # examples-proportional cap per task
    include = [{ collection = "flan_mini", variants = ["zs_opt", "zs_noopt"] }]

    [mixture.collection_mix]
    rate = "weights"
    include = [{ mixture = "flan_mini_all", weight = 0.7 }, { task = "local.alpaca_sample:zs_noopt", weight = 0.3 }]

An `include` entry is one of `{task = NAME}`, `{mixture = NAME}`, `{local = NAME}` (a `[local.NAME]`
collection read from FLAN_JAX_DATA_DIR), `{release = "niv2" | "t0_sf" | "dialog", variants}`
(one task per source task of a Flan 2022 collection on disk, flan_jax.data.sources.flan2022_readers) or
a selector `{collection, variants, clusters, exclude_clusters, datasets}`. `weight` (and `{mixture = ...}` entries) belong to rate = "weights"
mixtures only; elsewhere they are refused, since a size-proportional rate has no place for them.
A mixture may set `size_source = "published"` (the Flan 2022 recipe's counts, see
flan_jax.data.mixing.mixture_rates, which resolves mixtures into leaf tasks and shares).

A `[text.NAME]` table declares plain text trained with the base model's own objective
(flan_jax.data.sources.plain_text: `span_corruption` for T5, `lm` for decoders); a mixture takes it with
its own share of the examples, the other entries splitting the rest by the mixture's rate:

    [text.wiki]
    files = ["wiki/part1.txt", "wiki/part2.jsonl"]   # relative to this file; or
    # tfds = "c4/en:3.1.0"  (a prepared copy under $TFDS_DATA_DIR), tfds_split, text_field
    objective = "lm"                                  # | "span_corruption"
    chunk_length = 256                                # tokens per example

    [mixture.flan_mini_with_text]
    include = [{ collection = "flan_mini" }, { text = "wiki", share = 0.2 }]

(in a rate = "weights" mixture: `{ text = "wiki", weight = 0.2 }`). Leaf task: `text.wiki:lm`.

`drop_flagged = ["duplicates", "near_duplicates", "contaminated"]` (with `audit_eval = NAME`
for contamination) drops the examples a data-quality audit flags; see flan_jax.data.audit.audit_filter.

A `[family.NAME]` table expands to a train and an eval mixture per held-out cluster; its
`exclude_together` table lists what else leaves training with a held-out cluster.

This module parses files and registers mixtures with seqio; the rates live in mixture_rates.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from flan_jax.data.audit import audit_filter
from flan_jax.data.sources import plain_text
from flan_jax.data.tasks import registry as tasks_lib
from flan_jax.data.tasks import catalogue
from flan_jax.data.mixing.mixture_rates import group_shares, resolve  # noqa: F401 - the public names of mixtures
from flan_jax.data.mixing.mixture_types import (  # noqa: F401 - the public names of mixtures
    RATE_KINDS, SIZE_SOURCES, Leaf, MixtureDecl, MixtureError,
)
from flan_jax.data.sources.plain_text import TextSource
from flan_jax.data.templates.spec import LocalSource
from flan_jax.shipped import shipped_dir_candidates

MIXTURES_DIR_ENV = "FLAN_JAX_MIXTURES_DIR"
ENTRY_KINDS = ("task", "mixture", "local", "release", "collection", "text")
TEXT_KEYS = {"files", "tfds", "tfds_split", "text_field", "objective", "chunk_length"}
SELECTOR_KEYS = {"collection", "variants", "clusters", "exclude_clusters", "datasets", "weight"}


# ----------------------------------------------------------------------------- finding files


MIXTURES_PATH_ENV = "FLAN_JAX_MIXTURES_PATH"


def mixtures_dir() -> Path:
    """`$FLAN_JAX_MIXTURES_DIR`, else the repo's `mixtures/` (editable install or a checkout),
    else `<data prefix>/share/flan_jax/mixtures` (where a non-editable install puts them)."""
    if os.environ.get(MIXTURES_DIR_ENV):
        return Path(os.environ[MIXTURES_DIR_ENV])
    candidates = shipped_dir_candidates("mixtures")
    for c in candidates:
        if c.is_dir():
            return c
    raise MixtureError(
        f"no mixtures directory found (looked in {', '.join(map(str, candidates))}); "
        f"set {MIXTURES_DIR_ENV}"
    )


def mixture_files() -> list[Path]:
    """The *.toml files read by default: `mixtures_dir()` (which $FLAN_JAX_MIXTURES_DIR
    replaces), then every directory of $FLAN_JAX_MIXTURES_PATH (os.pathsep separated; set by
    the commands' `--mixtures_path` flag), which *add* to it. A missing added directory is an
    error naming it."""
    files = sorted(mixtures_dir().glob("*.toml"))
    for extra in (p for p in os.environ.get(MIXTURES_PATH_ENV, "").split(os.pathsep) if p):
        if not Path(extra).is_dir():
            raise MixtureError(f"{extra}: not a directory (from ${MIXTURES_PATH_ENV})")
        files += sorted(Path(extra).glob("*.toml"))
    return list(dict.fromkeys(f.resolve() for f in files))  # a folder named twice reads once


# ----------------------------------------------------------------------------- parsing


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


def load_files(paths: Iterable[str | os.PathLike] | None = None
               ) -> tuple[dict[str, MixtureDecl], dict[str, LocalSource]]:
    """Parse mixture files (default: every *.toml in `mixtures_dir()`), checking names are unique."""
    if paths is None:
        paths = mixture_files()
    decls: dict[str, MixtureDecl] = {}
    locals_: dict[str, LocalSource] = {}
    texts: dict[str, TextSource] = {}
    for path in paths:
        file = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise MixtureError(f"{file}: cannot read ({e})") from None
        except tomllib.TOMLDecodeError as e:
            raise MixtureError(f"{file}: not valid TOML ({e})") from None
        unknown_tables = set(data) - {"mixture", "family", "local", "text"}
        if unknown_tables:
            raise MixtureError(f"{file}: unknown tables {sorted(unknown_tables)}")
        new = [_parse_mixture(n, b, file) for n, b in data.get("mixture", {}).items()]
        for n, b in data.get("family", {}).items():
            new += _expand_family(n, b, file)
        for decl in new:
            if decl.name in decls:
                raise MixtureError(
                    f"{file}: mixture {decl.name!r} is already declared in {decls[decl.name].file}")
            decls[decl.name] = decl
        for n, b in data.get("local", {}).items():
            try:
                locals_[n] = LocalSource(b["file_pattern"], b["format"], tuple(b.get("columns", ())),
                                         tuple(b.get("splits", ("train",))), b.get("how_to_obtain", ""))
            except KeyError as e:
                raise MixtureError(f"{file}: local {n!r} lacks {e.args[0]!r}") from None
        for n, b in data.get("text", {}).items():
            if n in texts:
                raise MixtureError(f"{file}: text {n!r} is already declared in {texts[n].file}")
            texts[n] = _parse_text(n, b, file)
    return _attach_locals(_attach_texts(decls, texts), locals_), locals_


def _attach_locals(decls: Mapping[str, MixtureDecl], locals_: Mapping[str, LocalSource]) -> dict[str, MixtureDecl]:
    """Each `{local = NAME}` entry naming a declared `[local.NAME]` gains `local_source` (its
    LocalSource), so the rates size it by its training file (mixture_rates: the line count)."""
    return {name: dataclasses.replace(decl, include=tuple(
        {**e, "local_source": locals_[e["local"]]} if "local" in e and e["local"] in locals_ else e
        for e in decl.include)) for name, decl in decls.items()}


# ----------------------------------------------------------------------------- registering


def register_mixture(
    name: str,
    *,
    vocabulary=None,
    paths: Iterable[str | os.PathLike] | None = None,
    data_dir: str | None = None,
    text_objective: str | None = None,
    **task_kwargs: Any,
) -> list[Leaf]:
    """Register mixture `name` (and the tasks it needs) as a seqio mixture; returns its leaves.

    Local collections (`{local = NAME}`) and release collections (`{release = ...}`) need their
    files under `data_dir`/FLAN_JAX_DATA_DIR; a missing file is an error naming the file or
    directory, never a silently smaller mixture. With `text_objective` (the model's own, see
    plain_text.MODEL_OBJECTIVES) a text component with another objective is refused first.
    """
    import seqio

    from flan_jax.data.sources import flan2022_readers

    decls, locals_ = load_files(paths)
    leaves = resolve(name, decls, data_dir)
    for leaf in leaves:
        objective = leaf.task.rpartition(":")[2]
        if leaf.collection == plain_text.COLLECTION and text_objective and objective != text_objective:
            raise MixtureError(f"mixture {name!r}: text component {leaf.task!r} has objective {objective!r}, "
                               f"but the model's own objective is {text_objective!r} (set objective = "
                               f"\"{text_objective}\" in its [text] table)")
    base = data_dir or os.environ.get("FLAN_JAX_DATA_DIR")
    text_sources = {e["source"].task: e["source"] for d in decls.values() for e in d.include if "text" in e}
    released: dict[str, set[str]] = {}
    for leaf in leaves:
        if leaf.collection in flan2022_readers.RELEASES:
            if leaf.collection not in released:
                try:
                    released[leaf.collection] = set(flan2022_readers.register_release_tasks(
                        leaf.collection, data_dir, vocabulary, config=task_kwargs.get("config")))
                except flan2022_readers.ReleaseFileError as e:
                    raise MixtureError(f"mixture {name!r}: {e}") from None
            if leaf.task not in released[leaf.collection]:
                raise MixtureError(f"mixture {name!r}: task {leaf.task!r} has no file under "
                                   f"{flan2022_readers.collection_dir(leaf.collection, data_dir)}")
        elif leaf.collection == plain_text.COLLECTION:
            plain_text.register_text_source(text_sources[leaf.task], vocabulary)
        elif leaf.collection == "local" and leaf.task not in seqio.TaskRegistry.names():
            local_name = leaf.task.partition(".")[2].partition(":")[0]
            if local_name not in locals_:
                raise MixtureError(f"mixture {name!r}: local collection {local_name!r} is not declared")
            src = locals_[local_name]
            path = Path(src.file_pattern)
            path = path if path.is_absolute() or not base else Path(base) / path
            if not Path(str(path).replace("{split}", "train")).exists():  # a file or save_to_disk folder
                raise MixtureError(
                    f"mixture {name!r}: local collection {local_name!r} needs "
                    f"{str(path).replace('{split}', 'train')} (set FLAN_JAX_DATA_DIR). {src.how_to_obtain}")
            catalogue.register_local_tasks(local_name, str(path), format=src.format,
                                           splits=src.splits, vocabulary=vocabulary,
                                           columns=src.columns, config=task_kwargs.get("config"))
        else:
            catalogue.ensure_task(leaf.task, vocabulary, **task_kwargs)
    members = {leaf.task: leaf.task for leaf in leaves}
    decl = decls[name]
    if decl.drop_flagged:  # audit the leaves, mix their filtered copies (audit_filter.py)
        eval_tasks: list[str] = []
        if decl.audit_eval and "contaminated" in decl.drop_flagged:
            if ":" in decl.audit_eval:
                catalogue.ensure_task(decl.audit_eval, vocabulary, **task_kwargs)
                eval_tasks = [decl.audit_eval]
            else:
                eval_tasks = [leaf.task for leaf in register_mixture(
                    decl.audit_eval, vocabulary=vocabulary, paths=paths, data_dir=data_dir, **task_kwargs)]
        members, counts = audit_filter.apply(list(members), eval_tasks, decl.drop_flagged,
                                             decl.audit_eval_split)
        leaves = [dataclasses.replace(leaf, dropped=counts[leaf.task]) for leaf in leaves]
    if name in seqio.MixtureRegistry.names():
        seqio.MixtureRegistry.remove(name)
    seqio.MixtureRegistry.add(name, [(members[leaf.task], leaf.share) for leaf in leaves])
    return leaves
