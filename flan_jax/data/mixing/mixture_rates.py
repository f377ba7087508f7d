"""Mixture declarations resolved to leaf tasks and shares: sizes, rates, nesting.

Rates (seqio's `mixing_rate_num_examples` with `maximum=cap` and `temperature`):

    examples_proportional / temperature:
        rate_i = sum over the entries e that select task i of r_e ** (1 / temperature),
        r_e = min(n, cap) (or, for published per-template counts, the sum of each capped count)
    equal:    rate_i = 1 for every leaf task
    text entries ({text = NAME, share = s}, any rate but weights): a fixed share s; the other
              entries' shares above are scaled by 1 - sum(s)
    weights:  entry e gets weight_e / sum(weights); inside e, the entry's own shares (seqio
              flattens a nested mixture the same way)
    share_i = rate_i / sum_j rate_j

A task selected twice in one mixture gets both rates: in the Flan 2022 recipe a dataset without
answer options still has a zero-shot-with-options task and a zero-shot-no-options task (two
mixture entries), which flan_jax renders as one `:zs_noopt` task, so that task carries both.

Sizes n (never read from data; `Leaf.size_source` says where each came from):

    size_source = "data" (default, the FLAN 2021 recipe: train split sizes)
        an explicit `sizes` override, else the prepared TFDS train split, the local file's line
        count (a `{local = NAME}` entry's too; an Alpaca JSON list file: its items) or the
        procedural split size, else the published count (flan_jax.data.
        published_sizes, zero-shot column), else unknown: counted at the cap and flagged.
    size_source = "published" (the Flan 2022 recipe, flan/v2/mixtures_utils.py)
        the published count of every template type the requested variant stands for, each
        capped: zs_* min(zero_shot, cap); fs_opt min(five_shot, cap) + min(x_shot, cap);
        fs_noopt min(x_shot, cap). Sources without a published count fall back to "data".

Worked example: tasks a (n=5000), b (n=1000), cap 3000 -> rates 3000, 1000 -> shares 0.75,
0.25. Nested under `weights` at 0.4 next to a task c at 0.6 -> a 0.30, b 0.10, c 0.60.

Errors (MixtureError, one line naming the file and mixture): a mixture whose tasks all have zero
training examples; an unknown size with no cap; unknown task, mixture, collection or cluster.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flan_jax.data.sources import flan2022_readers
from flan_jax.data.mixing import published_sizes
from flan_jax.data.tasks import registry as tasks_lib
from flan_jax.data.tasks import catalogue
from flan_jax.data.templates.spec import LocalSource, ProceduralSource, TfdsSource
from flan_jax.errors import FlanJaxError

RATE_KINDS = ("examples_proportional", "temperature", "equal", "weights")
SIZE_SOURCES = ("data", "published")


class MixtureError(FlanJaxError):
    """A mixture file problem: the message names the file and the entry."""


@dataclasses.dataclass(frozen=True)
class MixtureDecl:
    name: str
    file: str
    rate: str
    include: tuple[Mapping[str, Any], ...]
    cap: int | None = None
    temperature: float = 1.0
    description: str = ""
    size_source: str = "data"
    # audit_filter.py: kinds of audit flags whose examples are dropped, and the evaluation
    # mixture/task (and split) that defines contamination
    drop_flagged: tuple[str, ...] = ()
    audit_eval: str | None = None
    audit_eval_split: str = "validation"


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One task of a resolved mixture with its share of the examples drawn."""

    task: str
    share: float
    collection: str
    cluster: str
    num_examples: int | None  # train examples, None when unknown offline
    size_known: bool
    # "tfds", "local_file", "procedural", "override", "published: <repository file>",
    # "unknown" (counted at the cap), or "" for rate = "equal" mixtures (sizes unused).
    size_source: str = ""
    # examples audited and dropped by the mixture's `drop_flagged` option (audit_filter.py):
    # {"audited", "duplicates", "near_duplicates", "contaminated", "dropped"}; empty without it
    dropped: Mapping[str, int] = dataclasses.field(default_factory=dict, compare=False)


@dataclasses.dataclass(frozen=True)
class _Size:
    counts: tuple[int, ...] | None  # one per template type summed into the rate; None: unknown
    origin: str


@dataclasses.dataclass(frozen=True)
class _Pick:
    """One mixture entry's choice of a leaf task (the variant it asked for sizes the rate)."""

    task: str
    collection: str
    source: str
    variant: str


# ----------------------------------------------------------------------------- sizes


def _tfds_train_size(source: TfdsSource) -> int | None:
    """The prepared TFDS train split size, or None (not prepared here: nothing is downloaded)."""
    return _tfds_split_size(source.tfds_name, source.splits.get("train", "train"),
                            os.environ.get("TFDS_DATA_DIR"))


@functools.lru_cache(maxsize=None)
def _tfds_split_size(tfds_name: str, split: str, data_dir: str | None) -> int | None:
    try:
        import tensorflow_datasets as tfds

        builder = tfds.builder(tfds_name, try_gcs=False, data_dir=data_dir)
        if not builder.is_prepared():
            return None
        return int(builder.info.splits[split].num_examples)
    except Exception:  # noqa: BLE001 - any failure means "size unknown offline"
        return None


def _local_train_size(source: LocalSource, data_dir: str | None) -> int | None:
    base = data_dir or os.environ.get("FLAN_JAX_DATA_DIR")
    path = Path(source.file_pattern.replace("{split}", "train"))
    if not path.is_absolute():
        if not base:
            return None
        path = Path(base) / path
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        if f.read(1 << 16).lstrip().startswith(b"["):  # an Alpaca JSON list: its items, not its lines
            try:
                items = json.loads(path.read_bytes())
            except ValueError:
                return None  # registration names the problem
            return len(items) if isinstance(items, list) else None
        f.seek(0)
        return sum(1 for line in f if line.strip())


@dataclasses.dataclass
class _Catalog:
    """Leaf-task facts (collection, cluster, size) from the DatasetSpecs, read once."""

    data_dir: str | None = None
    overrides: dict[str, int] = dataclasses.field(default_factory=dict)
    local_sources: dict[str, LocalSource] = dataclasses.field(default_factory=dict)  # `[local.NAME]`s
    _specs: dict[str, tuple] = dataclasses.field(default_factory=dict)
    _releases: dict[str, dict[str, int] | None] = dataclasses.field(default_factory=dict)

    def specs(self, collection: str):
        if collection not in self._specs:
            self._specs[collection] = catalogue.collection_datasets(collection)
        return self._specs[collection]

    def _spec_of(self, collection: str, source_name: str):
        if collection in catalogue.COLLECTIONS and collection != "local":
            for spec in self.specs(collection):
                if source_name in spec.sources:
                    return spec
        return None

    def select(self, entry: Mapping[str, Any], where: str) -> list[_Pick]:
        collection = entry["collection"]
        if collection not in catalogue.COLLECTIONS:
            raise MixtureError(f"{where}: {tasks_lib.unknown('collection', collection, catalogue.COLLECTIONS)}")
        specs = self.specs(collection)
        clusters = {s.cluster for s in specs}
        for key in ("clusters", "exclude_clusters"):
            for c in entry.get(key, []):
                if c not in clusters:
                    raise MixtureError(f"{where}: {tasks_lib.unknown('cluster', c, sorted(clusters))}")
        for variant in entry.get("variants", ["zs_opt"]):
            if variant not in tasks_lib.VARIANTS:
                raise MixtureError(f"{where}: {tasks_lib.unknown('variant', variant, tasks_lib.VARIANTS)}")
        picks = []
        for spec in specs:
            if "clusters" in entry and spec.cluster not in entry["clusters"]:
                continue
            if spec.cluster in entry.get("exclude_clusters", []):
                continue
            if "datasets" in entry and spec.name not in entry["datasets"]:
                continue
            for variant in entry.get("variants", ["zs_opt"]):
                # datasets without options have no *_opt task: the no-options one renders it
                rendered = variant if variant in tasks_lib.variants_for(spec) else variant.replace("_opt", "_noopt")
                for source in spec.sources:
                    picks.append(_Pick(tasks_lib.task_name(collection, source, rendered),
                                       collection, source, variant))
        if not picks:
            raise MixtureError(f"{where}: the selector matches no task")
        return picks

    def release_sizes(self, collection: str) -> dict[str, int] | None:
        if collection not in self._releases:
            self._releases[collection] = flan2022_readers.train_sizes(collection, self.data_dir)
        return self._releases[collection]

    def release_picks(self, entry: Mapping[str, Any], where: str) -> list[_Pick]:
        """Source tasks of a NIv2 / T0-SF / Dialog collection: the files present, else the
        published list (T0-SF, Dialog), else one placeholder `<collection>.*` task that
        registration refuses, naming the missing directory."""
        collection = entry["release"]
        if collection not in flan2022_readers.RELEASES:
            raise MixtureError(f"{where}: {tasks_lib.unknown('release collection', collection, flan2022_readers.RELEASES)}")
        sizes = self.release_sizes(collection)
        if sizes is None:
            sources = [s for (c, s) in published_sizes.table() if c == collection] or ["*"]
        else:
            sources = sorted(sizes)
        if not sources:
            raise MixtureError(f"{where}: no {collection} task files found")
        picks = []
        for variant in entry.get("variants", ["zs_opt"]):
            if variant not in flan2022_readers.RECIPE_VARIANTS:
                raise MixtureError(f"{where}: {tasks_lib.unknown('variant', variant, flan2022_readers.RECIPE_VARIANTS)}")
            rendered = variant.replace("_opt", "_noopt")
            picks += [_Pick(tasks_lib.task_name(collection, s, rendered), collection, s, variant)
                      for s in sources]
        return picks

    def cluster(self, task: str) -> tuple[str, str]:
        """(collection, cluster) of a leaf task name."""
        collection, _, rest = task.partition(".")
        spec = self._spec_of(collection, rest.partition(":")[0])
        if spec is not None:
            return collection, spec.cluster
        return collection, "local" if collection == "local" else collection

    def size(self, pick: _Pick, size_source: str) -> _Size:
        if pick.task in self.overrides:
            return _Size((int(self.overrides[pick.task]),), "override")
        published = published_sizes.lookup(pick.collection, pick.source)
        origin = f"published: {published_sizes.SOURCE}"
        variant = pick.variant if pick.variant in published_sizes.VARIANT_TEMPLATE_TYPES else "zs_opt"
        if published is not None and size_source == "published":
            types = published_sizes.VARIANT_TEMPLATE_TYPES[variant]
            return _Size(tuple(published.count(t) for t in types), origin)
        if pick.collection == "local" and pick.source in self.local_sources:
            n = _local_train_size(self.local_sources[pick.source], self.data_dir)
            if n is not None:
                return _Size((n,), "local_file")
        spec = self._spec_of(pick.collection, pick.source)
        if spec is not None:
            n, how = self._data_size(spec.sources[pick.source])
            if n is not None:
                return _Size((n,), how)
        if pick.collection in flan2022_readers.RELEASES:
            n = (self.release_sizes(pick.collection) or {}).get(pick.source)
            if n is not None:
                return _Size((n,), "local_file")
        if published is not None:
            return _Size((published.zero_shot,), origin)
        return _Size(None, "unknown")

    def _data_size(self, source) -> tuple[int | None, str]:
        if isinstance(source, ProceduralSource):
            return int(source.split_sizes.get("train", 0)), "procedural"
        if isinstance(source, TfdsSource):
            return _tfds_train_size(source), "tfds"
        if isinstance(source, LocalSource):
            return _local_train_size(source, self.data_dir), "local_file"
        return None, "unknown"


# ----------------------------------------------------------------------------- resolving


def _task_pick(task: str) -> _Pick:
    collection, _, rest = task.partition(".")
    source, _, variant = rest.partition(":")
    return _Pick(task, collection, source, variant)


def resolve(
    name: str,
    decls: Mapping[str, MixtureDecl],
    data_dir: str | None = None,
    sizes: Mapping[str, int] | None = None,
) -> list[Leaf]:
    """Flatten mixture `name` into leaf tasks with shares (sorted by share, largest first).

    `sizes` overrides train-example counts per task name (e.g. counts measured elsewhere).
    Raises MixtureError naming the file and mixture (see the module docstring).
    """
    catalog = _Catalog(data_dir, dict(sizes or {}), {e["local"]: e["local_source"] for d in decls.values()
                                                     for e in d.include if "local_source" in e})
    known_tasks: list[str] | None = None
    seen: dict[str, _Size] = {}

    def check_task(task: str, where: str) -> None:
        nonlocal known_tasks
        if known_tasks is None:
            known_tasks = catalogue.all_task_names()
        if task not in known_tasks:
            raise MixtureError(f"{where}: {tasks_lib.unknown('task', task, known_tasks)}")

    def rate_of(pick: _Pick, decl: MixtureDecl) -> float:
        size = catalog.size(pick, decl.size_source)
        seen.setdefault(pick.task, size)
        counts = size.counts
        if counts is None:
            if decl.cap is None:
                raise MixtureError(f"{decl.file}: mixture {decl.name!r}: size of {pick.task!r} "
                                   "unknown offline; give a cap")
            counts = (decl.cap,)
        total = sum(c if decl.cap is None else min(c, decl.cap) for c in counts)
        return float(total) ** (1.0 / decl.temperature)

    def shares_of(mix: str, stack: tuple[str, ...]) -> dict[str, float]:
        if mix not in decls:
            raise MixtureError(tasks_lib.unknown("mixture", mix, list(decls)).args[0])
        decl = decls[mix]
        if mix in stack:
            cycle = " -> ".join([*stack[stack.index(mix):], mix])
            raise MixtureError(f"{decl.file}: mixture {mix!r} includes itself: {cycle}")
        if decl.rate == "weights":
            return _weighted(decl, stack)
        rates: dict[str, float] = {}
        text_shares: dict[str, float] = {}  # fixed fractions, the rest split by the rate rule
        for i, entry in enumerate(decl.include):
            where = f"{decl.file}: mixture {mix!r}, include[{i}]"
            if "text" in entry:
                task = entry["source"].task
                text_shares[task] = text_shares.get(task, 0.0) + float(entry["share"])
                continue
            if "task" in entry:
                check_task(entry["task"], where)
                picks = [_task_pick(entry["task"])]
            elif "local" in entry:
                picks = [_task_pick(tasks_lib.task_name("local", entry["local"], "zs_noopt"))]
            elif "release" in entry:
                picks = catalog.release_picks(entry, where)
            else:  # a selector; mixture entries need rate = "weights" (checked when parsed)
                picks = catalog.select(entry, where)
            for pick in picks:
                if decl.rate == "equal":
                    rates[pick.task] = 1.0
                else:
                    rates[pick.task] = rates.get(pick.task, 0.0) + rate_of(pick, decl)
        fixed = sum(text_shares.values())
        if not rates:  # only text components: their shares, normalised
            return {t: s / fixed for t, s in text_shares.items()}
        if fixed >= 1:
            raise MixtureError(f"{decl.file}: mixture {mix!r}: the text entries' shares sum to "
                               f"{fixed:g}, leaving nothing for the other entries (must be < 1)")
        total = sum(rates.values())
        if total <= 0:
            raise MixtureError(f"{decl.file}: mixture {mix!r}: none of its tasks has training "
                               f"examples ({', '.join(sorted(rates))})")
        out = {t: (1.0 - fixed) * r / total for t, r in rates.items()}
        for t, s in text_shares.items():
            out[t] = out.get(t, 0.0) + s
        return out

    def _weighted(decl: MixtureDecl, stack: tuple[str, ...]) -> dict[str, float]:
        groups: list[tuple[float, dict[str, float]]] = []
        for i, entry in enumerate(decl.include):
            where = f"{decl.file}: mixture {decl.name!r}, include[{i}]"
            if "task" in entry:
                check_task(entry["task"], where)
                inner = {entry["task"]: 1.0}
            elif "mixture" in entry:
                if entry["mixture"] not in decls:
                    raise MixtureError(f"{where}: {tasks_lib.unknown('mixture', entry['mixture'], list(decls)).args[0]}")
                inner = shares_of(entry["mixture"], (*stack, decl.name))
            elif "local" in entry:
                inner = {tasks_lib.task_name("local", entry["local"], "zs_noopt"): 1.0}
            elif "text" in entry:
                inner = {entry["source"].task: 1.0}
            else:
                picks = catalog.release_picks(entry, where) if "release" in entry else catalog.select(entry, where)
                tasks = list(dict.fromkeys(p.task for p in picks))
                inner = {t: 1.0 / len(tasks) for t in tasks}
            groups.append((float(entry["weight"]), inner))
        total = sum(w for w, _ in groups)
        out: dict[str, float] = {}
        for w, inner in groups:
            for t, s in inner.items():
                out[t] = out.get(t, 0.0) + w / total * s
        return out

    shares = shares_of(name, ())
    leaves = []
    for task, share in shares.items():
        collection, cluster = catalog.cluster(task)
        size = seen.get(task)
        n = size.counts[0] if size is not None and size.counts is not None else None
        if collection == "text":  # a plain-text component: its share is declared, not sized
            leaves.append(Leaf(task, share, collection, cluster, None, False, "share"))
            continue
        if size is None and collection != "local":
            size = catalog.size(_task_pick(task), "data")
            n = size.counts[0] if size.counts is not None else None
        origin = size.origin if size is not None else "unknown"
        leaves.append(Leaf(task, share, collection, cluster, n, n is not None, origin))
    return sorted(leaves, key=lambda leaf: (-leaf.share, leaf.task))


def group_shares(leaves: Sequence[Leaf], key: str) -> dict[str, float]:
    """Sum of shares per `cluster` or `collection`."""
    out: dict[str, float] = {}
    for leaf in leaves:
        k = getattr(leaf, key)
        out[k] = out.get(k, 0.0) + leaf.share
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
