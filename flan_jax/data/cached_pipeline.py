"""Training batches from a task cache (data/cache.py) through Grain, resumable in constant time.

    examples = mixed_examples(cache_dir, {"task_a": 0.75, "task_b": 0.25}, "train", seed=0)
    it = CachedBatches(examples, "decoder", {"inputs": 64, "targets": 16}, batch_size=8)
    batch = next(it); state = it.state()          # {"block": 0, "row": 8}
    CachedBatches(examples, ..., state=state)      # continues with exactly the next batch

The stream, all of it a pure function of (cache, rates, seed, host shard):

1. per task, a Grain `MapDataset` over its ArrayRecord files, shuffled with a new permutation each
   epoch (`shuffle(seed).repeat()`), so a task is read in a global random order;
2. `MapDataset.mix(tasks, weights=rates)`: the mixture's rates at read time (a new mixture over
   cached tasks needs no re-cache);
3. this host's shard: positions `shard_index, shard_index + num_shards, ...`;
4. blocks of `block_size` consecutive positions; each block's examples are laid out (overlong policy,
   zero-loss drop) and packed best-fit on their own, so block b's rows depend on block b alone.

Worked example (block_size 4, examples of decoder length 5, 4, 3, 4 | 6, 2, ...; rows of 8):

    block 0 -> rows [5, 3], [4, 4]        block 1 -> rows [6, 2], ...
    batches of 2 rows: batch 0 = block 0 rows 0-1, batch 1 = block 1 rows 0-1
    state after batch 0 = {"block": 1, "row": 0}

The state (block, row) is all a checkpoint needs: resuming re-packs one block, whatever the
position (constant time), and yields the batches an uninterrupted run yields. Blocks are packed
by `workers` processes ahead of the trainer; the result does not depend on the worker count.
"""
from __future__ import annotations

import collections
import concurrent.futures as cf
import dataclasses
import multiprocessing as mp
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from flan_jax.data import cache, features, packing
from flan_jax.data.pipeline import PipelineStats
from flan_jax.errors import FlanJaxError


@dataclasses.dataclass(frozen=True)
class StreamSpec:
    """Everything that defines the example stream (picklable, so worker processes rebuild it)."""

    files: tuple[tuple[str, ...], ...]  # per task, its ArrayRecord files
    rates: tuple[float, ...]
    seed: int = 0
    shard_index: int = 0
    num_shards: int = 1


def stream_spec(cache_dir: str, rates: Mapping[str, float], split: str, *, vocabulary: Any = None,
                seed: int = 0, shard_index: int = 0, num_shards: int = 1) -> StreamSpec:
    """Check every task's manifest (a stale or missing cache is an error naming the task and
    field) and describe the stream. `vocabulary`: the run's vocabulary (None: the task's own)."""
    import seqio  # noqa: PLC0415

    files = []
    for task in rates:
        manifest = cache.load_manifest(cache_dir, task)
        if manifest is None:
            raise cache.StaleCacheError(f"cache {cache_dir}: task {task!r} is not cached "
                                        f"(flan-jax cache <mixture> --out {cache_dir})")
        vocab = vocabulary or seqio.get_mixture_or_task(task).output_features["targets"].vocabulary
        cache.check_manifest(manifest, task_name=task, vocabulary=vocab, split=split, where=f"cache {cache_dir}")
        if manifest["splits"][split]["num_examples"] == 0:
            raise FlanJaxError(f"cache {cache_dir}: task {task!r} has no {split!r} examples")
        folder = cache.task_dir(cache_dir, task)
        files.append(tuple(str(folder / f) for f in manifest["splits"][split]["files"]))
    if not files:
        raise FlanJaxError("cached pipeline: no tasks")
    return StreamSpec(tuple(files), tuple(float(r) for r in rates.values()), seed, shard_index, num_shards)


def mixed_examples(spec: StreamSpec) -> Any:
    """The infinite Grain MapDataset of this host's decoded examples (steps 1-3 above)."""
    import grain  # noqa: PLC0415

    tasks = [grain.MapDataset.source(grain.sources.ArrayRecordDataSource(list(f)))
             .shuffle(seed=spec.seed + i).repeat() for i, f in enumerate(spec.files)]
    mixed = grain.MapDataset.mix(tasks, weights=list(spec.rates)) if len(tasks) > 1 else tasks[0]
    return mixed[spec.shard_index::spec.num_shards].map(cache.decode_example)


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    stream: StreamSpec
    format_name: str
    lengths: tuple[tuple[str, int], ...]
    pack: bool = True
    overlong: str = "truncate"
    block_size: int = 4096


_WORKER_STREAMS: dict[StreamSpec, Any] = {}


def block_rows(spec: BlockSpec, block: int) -> tuple[list[list[features.Segment]], dict[str, int]]:
    """The rows of one block and its counts (examples, truncated, dropped_overlong, zero_loss)."""
    examples = _WORKER_STREAMS.get(spec.stream)
    if examples is None:
        examples = _WORKER_STREAMS.setdefault(spec.stream, mixed_examples(spec.stream))
    lengths = dict(spec.lengths)
    counts = {"examples": 0, "truncated": 0, "dropped_overlong": 0, "zero_loss": 0}
    segments = []
    for pos in range(block * spec.block_size, (block + 1) * spec.block_size):
        seg, outcome = features.example_to_segment(examples[pos], spec.format_name, lengths, spec.overlong,
                                                   where=f"cached example {pos}")
        counts["examples"] += 1
        if outcome == "truncated":
            counts["truncated"] += 1
        elif outcome == "dropped":
            counts["dropped_overlong"] += 1
        elif outcome == "zero_loss":
            counts["zero_loss"] += 1
        if seg is not None:
            segments.append(seg)
    if not spec.pack:
        return [[s] for s in segments], counts
    capacity = features.row_capacity(spec.format_name, lengths)
    return packing.pack_segments(segments, packing.BestFitPacker(capacity)), counts


class CachedBatches:
    """Iterator of batch dicts over `BlockSpec` blocks; `state()` is the data position."""

    def __init__(self, spec: BlockSpec, batch_size: int, *, state: Mapping[str, int] | None = None,
                 workers: int = 0) -> None:
        if batch_size < 1 or spec.block_size < 1:
            raise FlanJaxError(f"batch_size and block_size must be >= 1 ({batch_size}, {spec.block_size})")
        self.spec, self.batch_size = spec, batch_size
        state = dict(state or {"block": 0, "row": 0})
        self._block, self._row = int(state["block"]), int(state["row"])
        self.stats = PipelineStats()
        self._workers = workers
        self._pool = (cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
                      if workers > 0 else None)
        self._ahead: collections.deque = collections.deque()
        self._next_block = self._block
        self._rows: list | None = None

    def state(self) -> dict[str, int]:
        return {"block": self._block, "row": self._row}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _fetch(self) -> tuple[list, dict[str, int]]:
        if self._pool is None:
            result = block_rows(self.spec, self._next_block)
            self._next_block += 1
            return result
        while len(self._ahead) < 2 * self._workers:
            self._ahead.append(self._pool.submit(block_rows, self.spec, self._next_block))
            self._next_block += 1
        return self._ahead.popleft().result()

    def _current_rows(self) -> list:
        while self._rows is None or self._row >= len(self._rows):
            if self._rows is not None:  # the previous block is used up
                self._block, self._row = self._block + 1, 0
            self._rows, counts = self._fetch()
            for k, v in counts.items():
                setattr(self.stats, k, getattr(self.stats, k) + v)
        return self._rows

    def __iter__(self) -> CachedBatches:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        rows: list = []
        while len(rows) < self.batch_size:
            block_rows_ = self._current_rows()
            take = block_rows_[self._row:self._row + self.batch_size - len(rows)]
            rows += take
            self._row += len(take)
        if self._row >= len(self._rows):  # park the state at the next block's start
            self._block, self._row, self._rows = self._block + 1, 0, None
        lengths = dict(self.spec.lengths)
        batch = features.assemble_rows(rows, self.spec.format_name, lengths, packed=self.spec.pack)
        self.stats.rows += len(rows)
        self.stats.batches += 1
        return batch


def resolve_rates(leaves: Sequence[Any]) -> dict[str, float]:
    """{task: share} from mixture leaves (data.mixtures.resolve), in the mixture's order."""
    return {leaf.task: float(leaf.share) for leaf in leaves}
