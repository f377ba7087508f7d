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

from collections.abc import Mapping, Sequence

from flan_jax.data.mixing.mixture_sizes import _Catalog, _Pick, _Size
from flan_jax.data.mixing.mixture_types import Leaf, MixtureDecl, MixtureError
from flan_jax.data.tasks import registry as tasks_lib
from flan_jax.data.tasks import catalogue


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
