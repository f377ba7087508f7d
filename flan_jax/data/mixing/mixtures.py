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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flan_jax.data.audit import audit_filter
from flan_jax.data.sources import plain_text
from flan_jax.data.tasks import catalogue
from flan_jax.data.mixing.mixture_parsing import (
    _attach_locals, _attach_texts, _expand_family, _parse_mixture, _parse_text,
)
from flan_jax.data.mixing.mixture_rates import group_shares, resolve  # noqa: F401 - the public names of mixtures
from flan_jax.data.mixing.mixture_types import (  # noqa: F401 - the public names of mixtures
    RATE_KINDS, SIZE_SOURCES, Leaf, MixtureDecl, MixtureError,
)
from flan_jax.data.sources.plain_text import TextSource
from flan_jax.data.templates.spec import LocalSource
from flan_jax.shipped import shipped_dir_candidates

MIXTURES_DIR_ENV = "FLAN_JAX_MIXTURES_DIR"


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
