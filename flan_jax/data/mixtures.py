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
collection read from FLAN_JAX_DATA_DIR) or a selector `{collection, variants, clusters,
exclude_clusters, datasets}`. Resolution flattens nesting into leaf tasks with shares summing to 1:

    examples_proportional: rate_i = min(n_i, cap) ** (1 / temperature), n_i = train examples
    equal:                 rate_i = 1 for every leaf task
    weights:               entry e gets weight_e / sum(weights); inside e, its own shares

Worked example: tasks a (n=5000), b (n=1000), cap 3000 -> rates 3000, 1000 -> shares 0.75, 0.25.
Nested inside `weights` with weight 0.4 next to a task c with weight 0.6 -> a 0.30, b 0.10, c 0.60.

Sizes come from the source without reading data: ProceduralSource split sizes, local files' line
counts, TFDS split sizes where the dataset is prepared locally; an unknown size is taken as the
cap and flagged (`size_known=False`), so an offline machine still gets FLAN's capped rates.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from flan_jax.data import tasks as tasks_lib
from flan_jax.data.spec import LocalSource, ProceduralSource, TfdsSource
from flan_jax.errors import FlanJaxError
from flan_jax.shipped import shipped_dir_candidates

RATE_KINDS = ("examples_proportional", "temperature", "equal", "weights")
MIXTURES_DIR_ENV = "FLAN_JAX_MIXTURES_DIR"
ENTRY_KINDS = ("task", "mixture", "local", "collection")
SELECTOR_KEYS = {"collection", "variants", "clusters", "exclude_clusters", "datasets", "weight"}


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


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One task of a resolved mixture with its share of the examples drawn."""

    task: str
    share: float
    collection: str
    cluster: str
    num_examples: int | None  # train examples, None when the source cannot tell offline
    size_known: bool


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
    unknown_keys = set(body) - {"description", "rate", "cap", "temperature", "include"}
    if unknown_keys:
        raise MixtureError(f"{where}: unknown keys {sorted(unknown_keys)}")
    rate = body.get("rate", "examples_proportional")
    if rate not in RATE_KINDS:
        raise MixtureError(f"{where}: rate {rate!r} is not one of {', '.join(RATE_KINDS)}")
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
        if "weight" in entry:
            _positive(entry["weight"], "weight", at)
        elif rate == "weights":
            raise MixtureError(f"{at}: rate = \"weights\" needs a weight on every entry")
        if kinds[0] == "collection":
            extra = set(entry) - SELECTOR_KEYS
            if extra:
                raise MixtureError(f"{at}: unknown selector keys {sorted(extra)}")
        elif set(entry) - {kinds[0], "weight"}:
            raise MixtureError(f"{at}: unknown keys {sorted(set(entry) - {kinds[0], 'weight'})}")
    cap = body.get("cap")
    if cap is not None:
        cap = int(_positive(cap, "cap", where))
    temperature = _positive(body.get("temperature", 1.0), "temperature", where)
    return MixtureDecl(name, file, rate, tuple(include), cap, float(temperature),
                       body.get("description", ""))


def _expand_family(name: str, body: Mapping[str, Any], file: str) -> list[MixtureDecl]:
    """A held-out-cluster family -> `<name>_no_<C>` (train) and `<name>_<C>_eval` per cluster C.

    `exclude_together = {A = ["B"]}` also drops cluster B from training when A is held out (FLAN
    drops reading comprehension with commonsense when reading comprehension is held out).
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
    for path in paths:
        file = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise MixtureError(f"{file}: cannot read ({e})") from None
        except tomllib.TOMLDecodeError as e:
            raise MixtureError(f"{file}: not valid TOML ({e})") from None
        unknown_tables = set(data) - {"mixture", "family", "local"}
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
    return decls, locals_


# ----------------------------------------------------------------------------- resolving


@dataclasses.dataclass
class _Catalog:
    """Leaf-task facts (collection, cluster, size) from the DatasetSpecs, read once."""

    data_dir: str | None = None
    sizes: dict[str, int] = dataclasses.field(default_factory=dict)
    _specs: dict[str, tuple] = dataclasses.field(default_factory=dict)

    def specs(self, collection: str):
        if collection not in self._specs:
            self._specs[collection] = tasks_lib.collection_datasets(collection)
        return self._specs[collection]

    def select(self, entry: Mapping[str, Any], where: str) -> list[str]:
        collection = entry["collection"]
        if collection not in tasks_lib.COLLECTIONS:
            raise MixtureError(f"{where}: {tasks_lib.unknown('collection', collection, tasks_lib.COLLECTIONS)}")
        specs = self.specs(collection)
        clusters = {s.cluster for s in specs}
        for key in ("clusters", "exclude_clusters"):
            for c in entry.get(key, []):
                if c not in clusters:
                    raise MixtureError(f"{where}: {tasks_lib.unknown('cluster', c, sorted(clusters))}")
        names = []
        for spec in specs:
            if "clusters" in entry and spec.cluster not in entry["clusters"]:
                continue
            if spec.cluster in entry.get("exclude_clusters", []):
                continue
            if "datasets" in entry and spec.name not in entry["datasets"]:
                continue
            for variant in entry.get("variants", ["zs_opt"]):
                if variant not in tasks_lib.VARIANTS:
                    raise MixtureError(f"{where}: {tasks_lib.unknown('variant', variant, tasks_lib.VARIANTS)}")
                if variant not in tasks_lib.variants_for(spec):
                    # datasets without options have no *_opt variants: use the no-options one
                    variant = variant.replace("_opt", "_noopt")
                for source in spec.sources:
                    names.append(tasks_lib.task_name(collection, source, variant))
        if not names:
            raise MixtureError(f"{where}: the selector matches no task")
        return list(dict.fromkeys(names))

    def describe(self, task: str) -> tuple[str, str, int | None]:
        """(collection, cluster, train examples or None) of a leaf task name."""
        collection, _, rest = task.partition(".")
        source_name = rest.partition(":")[0]
        if task in self.sizes:
            cluster = self.describe_cluster(collection, source_name)
            return collection, cluster, self.sizes[task]
        if collection in tasks_lib.COLLECTIONS and collection != "local":
            for spec in self.specs(collection):
                if source_name in spec.sources:
                    return collection, spec.cluster, self._size(spec.sources[source_name], spec.name)
        return collection, "local" if collection == "local" else collection, None

    def describe_cluster(self, collection: str, source_name: str) -> str:
        if collection in tasks_lib.COLLECTIONS and collection != "local":
            for spec in self.specs(collection):
                if source_name in spec.sources:
                    return spec.cluster
        return collection

    def _size(self, source, dataset: str) -> int | None:
        if isinstance(source, ProceduralSource):
            return int(source.split_sizes.get("train", 0)) or None
        if isinstance(source, TfdsSource):
            return _tfds_train_size(source)
        if isinstance(source, LocalSource):
            return _local_train_size(source, self.data_dir, dataset)
        return None


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


def _local_train_size(source: LocalSource, data_dir: str | None, dataset: str) -> int | None:
    base = data_dir or os.environ.get("FLAN_JAX_DATA_DIR")
    path = Path(source.file_pattern.replace("{split}", "train"))
    if not path.is_absolute():
        if not base:
            return None
        path = Path(base) / path
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _entry_weight(entry: Mapping[str, Any]) -> float:
    return float(entry.get("weight", 1.0))


def resolve(
    name: str,
    decls: Mapping[str, MixtureDecl],
    data_dir: str | None = None,
    sizes: Mapping[str, int] | None = None,
) -> list[Leaf]:
    """Flatten mixture `name` into leaf tasks with shares (sorted by share, largest first).

    `sizes` overrides train-example counts per task name (e.g. published sizes of datasets
    that are not prepared on this machine).
    """
    catalog = _Catalog(data_dir, dict(sizes or {}))
    known_tasks: list[str] | None = None

    def check_task(task: str, where: str) -> None:
        nonlocal known_tasks
        if known_tasks is None:
            known_tasks = tasks_lib.all_task_names()
        if task not in known_tasks:
            raise MixtureError(f"{where}: {tasks_lib.unknown('task', task, known_tasks)}")

    def shares_of(mix: str, stack: tuple[str, ...]) -> dict[str, float]:
        if mix not in decls:
            raise MixtureError(tasks_lib.unknown("mixture", mix, list(decls)).args[0])
        decl = decls[mix]
        if mix in stack:
            cycle = " -> ".join([*stack[stack.index(mix):], mix])
            raise MixtureError(f"{decl.file}: mixture {mix!r} includes itself: {cycle}")
        groups: list[tuple[float, dict[str, float]]] = []  # (entry weight, shares within entry)
        for i, entry in enumerate(decl.include):
            where = f"{decl.file}: mixture {mix!r}, include[{i}]"
            if "task" in entry:
                check_task(entry["task"], where)
                inner = {entry["task"]: 1.0}
            elif "mixture" in entry:
                if entry["mixture"] not in decls:
                    raise MixtureError(f"{where}: {tasks_lib.unknown('mixture', entry['mixture'], list(decls)).args[0]}")
                inner = shares_of(entry["mixture"], (*stack, mix))
            elif "local" in entry:
                inner = {tasks_lib.task_name("local", entry["local"], "zs_noopt"): 1.0}
            else:
                tasks = catalog.select(entry, where)
                inner = {t: 1.0 / len(tasks) for t in tasks}
            groups.append((_entry_weight(entry), inner))
        if decl.rate == "weights":
            total = sum(w for w, _ in groups)
            out: dict[str, float] = {}
            for w, inner in groups:
                for t, s in inner.items():
                    out[t] = out.get(t, 0.0) + w / total * s
            return out
        leaves = list(dict.fromkeys(t for _, inner in groups for t in inner))
        if decl.rate == "equal":
            rates = {t: 1.0 for t in leaves}
        else:
            cap = decl.cap
            rates = {}
            for t in leaves:
                n = catalog.describe(t)[2]
                n = cap if n is None else (min(n, cap) if cap else n)
                if n is None:
                    raise MixtureError(
                        f"{decl.file}: mixture {mix!r}: size of {t!r} unknown offline; give a cap")
                rates[t] = float(n) ** (1.0 / decl.temperature)
        total = sum(rates.values())
        return {t: r / total for t, r in rates.items()}

    shares = shares_of(name, ())
    leaves = []
    for task, share in shares.items():
        collection, cluster, n = catalog.describe(task)
        leaves.append(Leaf(task, share, collection, cluster, n, n is not None))
    return sorted(leaves, key=lambda leaf: (-leaf.share, leaf.task))


def group_shares(leaves: Sequence[Leaf], key: str) -> dict[str, float]:
    """Sum of shares per `cluster` or `collection`."""
    out: dict[str, float] = {}
    for leaf in leaves:
        k = getattr(leaf, key)
        out[k] = out.get(k, 0.0) + leaf.share
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


# ----------------------------------------------------------------------------- registering


def register_mixture(
    name: str,
    *,
    vocabulary=None,
    paths: Iterable[str | os.PathLike] | None = None,
    data_dir: str | None = None,
    **task_kwargs: Any,
) -> list[Leaf]:
    """Register mixture `name` (and the tasks it needs) as a seqio mixture; returns its leaves.

    Local collections (`{local = NAME}`) need their files under `data_dir`/FLAN_JAX_DATA_DIR;
    a missing file is an error naming the file, never a silently smaller mixture.
    """
    import seqio

    decls, locals_ = load_files(paths)
    leaves = resolve(name, decls, data_dir)
    base = data_dir or os.environ.get("FLAN_JAX_DATA_DIR")
    for leaf in leaves:
        if leaf.collection == "local" and leaf.task not in seqio.TaskRegistry.names():
            local_name = leaf.task.partition(".")[2].partition(":")[0]
            if local_name not in locals_:
                raise MixtureError(f"mixture {name!r}: local collection {local_name!r} is not declared")
            src = locals_[local_name]
            path = Path(src.file_pattern)
            path = path if path.is_absolute() or not base else Path(base) / path
            if not Path(str(path).replace("{split}", "train")).is_file():
                raise MixtureError(
                    f"mixture {name!r}: local collection {local_name!r} needs "
                    f"{str(path).replace('{split}', 'train')} (set FLAN_JAX_DATA_DIR). {src.how_to_obtain}")
            tasks_lib.register_local_tasks(local_name, str(path), format=src.format,
                                           splits=src.splits, vocabulary=vocabulary,
                                           columns=src.columns)
        else:
            tasks_lib.ensure_task(leaf.task, vocabulary, **task_kwargs)
    if name in seqio.MixtureRegistry.names():
        seqio.MixtureRegistry.remove(name)
    seqio.MixtureRegistry.add(name, [(leaf.task, leaf.share) for leaf in leaves])
    return leaves
