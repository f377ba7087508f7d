"""The trainer's data side: which task or mixture a run reads, its options, and its identity.

    data_options(pack=True, cache_dir="/data/cache")  -> kwargs for data.features.pipeline.batches
    register("flan_mini_all", "decoder")              -> {} (audit drop counts, if the mixture asks)
    fingerprint("flan_mini_all", "train")            -> what the mixture is (data/mixing/fingerprint.py)
    identity_mismatch(stored, now)                    -> {"mixture": ("a", "b")} (what changed)
    change_text(changed, "m")                         -> "mixture: 'a' then, 'b' now" (for the refusal)
    resume_position(checkpoints, identity, ...)      -> (batches consumed, cached-stream state)
    FirstBatch(make, "m yields no batch").result()    -> (the batch iterator, its first batch)

`train()` (train/train.py) checkpoints the data stream's identity with the model state and
refuses to resume on a different stream unless `allow_data_change` is set.
"""
from __future__ import annotations

import concurrent.futures
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import gin

from flan_jax.errors import FlanJaxError

log = logging.getLogger("flan_jax.train")


@gin.configurable
def data_options(pack: bool = True, packer: str = "best_fit", split: str = "train",
                 shuffle: bool = True, cache_dir: str | None = None, cache_workers: int = 0,
                 cache_block_size: int = 4096) -> dict[str, Any]:
    """Keyword arguments for `data.pipeline.batches` (packing on, endless epochs); with
    `cache_dir` (written by `flan-jax cache`) batches come from the cache instead
    (data/cache/cached_pipeline.py: `cache_workers` packing processes, blocks of `cache_block_size`
    examples; the data position is the block and row, so resuming costs the same at any step)."""
    out = {"pack": pack, "packer": packer, "split": split, "shuffle": shuffle}
    if cache_dir:
        out.update(cache_dir=str(cache_dir), cache_workers=int(cache_workers),
                   cache_block_size=int(cache_block_size))
    return out


def register(name: str, feature_format: str, inputs_length: int | None = None) -> dict[str, int]:
    """Register the seqio task (`collection.source:variant`) or the mixture (mixtures/*.toml).
    A plain-text component must use the model's own objective (plain_text.MODEL_OBJECTIVES).
    `inputs_length` (the run's `feature_lengths["inputs"]`): few-shot prompts are pruned to fit
    it, last exemplar first, so no row cuts an example's own question (variants.RenderConfig).
    Returns the audit's drop counts (`audit_<kind>`, audit_filter.py; empty without the option)."""
    from flan_jax.data.audit import audit_filter
    from flan_jax.data.mixing import mixtures
    from flan_jax.data.sources import plain_text
    from flan_jax.data.tasks import catalogue, registry

    config = registry.fitted_config(registry.default_render_config(), inputs_length)
    if ":" in name and "." in name:
        catalogue.ensure_task(name, config=config)
        return {}
    leaves = mixtures.register_mixture(name, text_objective=plain_text.MODEL_OBJECTIVES.get(feature_format),
                                       config=config)
    return audit_filter.totals(leaves)


def check_vocabulary(model_vocab_size: int) -> None:
    """Token ids from the data must index the model's embedding table (a gather would clamp)."""
    from flan_jax.data.tasks import registry as tasks

    data_vocab_size = int(tasks.default_vocabulary().vocab_size)
    if data_vocab_size > model_vocab_size:
        raise FlanJaxError(f"the data vocabulary has {data_vocab_size} ids but the model's vocab_size is "
                           f"{model_vocab_size}; bind the model's vocab_size >= {data_vocab_size}")


def fingerprint(mixture: str, split: str) -> dict[str, Any]:
    """What the registered mixture (or task) is: tasks, shares, templates, files
    (data/mixing/fingerprint.py); stored as the identity's "data" field."""
    from flan_jax.data.mixing import fingerprint as fingerprint_lib

    return fingerprint_lib.describe(mixture, split=split)


def identity_mismatch(stored: Mapping[str, Any] | None, identity: Mapping[str, Any]) -> dict[str, Any]:
    """{field: (checkpoint's value, this run's)} for every field of the data stream's identity
    that differs (JSON-normalised: tuples and lists compare equal); for the mixture's
    fingerprint ("data"), the phrases naming what changed in it. A checkpoint written before
    fingerprints were stored is not checked there (logged)."""
    if stored is None:
        return {}
    now = json.loads(json.dumps(identity))
    out = {k: (stored.get(k), now.get(k)) for k in sorted(set(stored) | set(now))
           if stored.get(k) != now.get(k) and k not in ORDER_FREE and k != "data"}
    if "data" in now and "data" not in stored:
        log.warning("checkpoint stores no data fingerprint (older format): what the mixture is was not checked")
    elif "data" in now:
        from flan_jax.data.mixing import fingerprint as fingerprint_lib

        phrases = fingerprint_lib.differences(stored["data"], now["data"])
        if phrases:
            out["data"] = phrases
    return out


def change_text(changed: Mapping[str, Any], mixture: str) -> str:
    """One line: "seed: 0 then, 1 now; mixture 'm' is not the data it was: tasks removed: ..."."""
    return "; ".join(f"mixture {mixture!r} is not the data it was: " + "; ".join(v) if k == "data"
                     else f"{k}: {v[0]!r} then, {v[1]!r} now" for k, v in changed.items())


# data options that do not change the order of the batches (older checkpoints stored them)
ORDER_FREE = frozenset({"cache_workers"})


def resume_position(checkpoints: Any, identity: Mapping[str, Any], mixture: str, batch_size: int,
                    allow_data_change: bool) -> tuple[int, Any]:
    """(batches consumed, this host's cached-stream state or None) at which a run resumed from
    `checkpoints`' latest step continues its data stream.

    The stored identity must equal `identity`, else FlanJaxError naming what changed, unless
    `allow_data_change`: then a changed batch size alone continues at the same row when the
    rows consumed divide by it, and any other change starts the stream from its beginning
    (logged). A checkpoint without an identity (older format) is resumed unchecked (logged)."""
    from flan_jax.train import distributed

    step = checkpoints.latest_step()
    position = checkpoints.data_position()
    consumed = int(position["batches_consumed"])
    cache_state = position.get("cache_state")  # a cached stream's (block, row) per host
    changed = identity_mismatch(position.get("identity"), identity)
    if changed and not allow_data_change:
        raise FlanJaxError(
            f"checkpoint {checkpoints.directory}/{step} was trained on another data stream "
            f"({change_text(changed, mixture)}); resuming would skip or repeat examples. Use a new "
            "model_dir, or bind train.allow_data_change=True")
    if changed:
        rows = position.get("rows_consumed")
        same_rows = set(changed) == {"batch_size"} and rows is not None and rows % batch_size == 0
        consumed = rows // batch_size if same_rows else 0
        cache_state = cache_state if same_rows else None
        log.warning("data stream changed (%s): %s", ", ".join(changed),
                    f"continuing at row {rows}" if same_rows else "the new stream starts from its beginning")
    cache_state = distributed.host_data_state(cache_state, where=f"checkpoint {checkpoints.directory}/{step}")
    if position.get("identity") is None:
        log.warning("checkpoint stores no data identity (older format): data stream not checked")
    return consumed, cache_state

class FirstBatch:
    """Builds the batch iterator (`make()`) and reads its first batch in a background thread,
    so the data pipeline's start runs while `train()` restores the state and compiles the step
    (the flan-nl tuning's: ~7 s building 24 seqio tasks, then ~24 s filling their shuffle buffers
    and the packer's; docs/training.md).

    result() -> (iterator, first batch), waiting for the thread; it raises what building or
    reading raised, and FlanJaxError(`empty`) when the iterator yields nothing.
    close() waits for the thread and closes the iterator (a cached stream's processes) when
    result() was not taken, for a run that stops before its loop. `background=False` reads in
    the calling thread instead (train() on CPU: there the pipeline's allocations interleaved
    with the compilation's in the tuned single-arena heap, and the flan-nl tuning's peak RSS
    was 21.5 GiB against 14.3-17.9 without, for 3.5 s saved; docs/training.md).
    """

    def __init__(self, make: Callable[[], Iterator[dict[str, Any]]], empty: str, background: bool = True) -> None:
        self._empty = empty
        self._taken = False
        if not background:  # read here, in the calling thread
            self._future: concurrent.futures.Future = concurrent.futures.Future()
            try:
                self._future.set_result(self._read(make))
            except Exception as e:  # noqa: BLE001 -- raised again by result()
                self._future.set_exception(e)
            return
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="first-batch")
        self._future = self._pool.submit(self._read, make)
        self._pool.shutdown(wait=False)  # the one task still runs; no further ones

    @staticmethod
    def _read(make: Callable[[], Iterator[dict[str, Any]]]) -> tuple[Iterator[dict[str, Any]], Any]:
        batches = make()
        try:
            return batches, next(batches)
        except StopIteration:
            return batches, None

    def result(self) -> tuple[Iterator[dict[str, Any]], dict[str, Any]]:
        self._taken = True
        batches, first = self._future.result()
        if first is None:
            if hasattr(batches, "close"):
                batches.close()
            raise FlanJaxError(self._empty)
        return batches, first

    def close(self) -> None:
        if self._taken:
            return
        self._taken = True
        try:
            batches, _ = self._future.result()
        except Exception:  # noqa: BLE001 -- the run is already stopping for its own reason
            return
        if hasattr(batches, "close"):
            batches.close()
