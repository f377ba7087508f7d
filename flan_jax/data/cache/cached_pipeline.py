"""Training batches from a task cache (data/cache/writer.py) through Grain, resumable in constant time.

    stream = stream_spec(cache_dir, {"task_a": 0.75, "task_b": 0.25}, "train", seed=0)
    spec = BlockSpec(stream, "decoder", (("inputs", 64), ("targets", 16)))
    it = CachedBatches(spec, batch_size=8)
    batch = next(it); state = it.state()          # {"block": 0, "row": 8}
    CachedBatches(spec, 8, state=state)            # continues with exactly the next batch

The stream, all of it a pure function of (cache, rates, seed, host shard):

1. per task, Grain's `ArrayRecordDataSource` over its files, read in a new random permutation each
   epoch, so a task is read in a global random order;
2. blocks of about `block_size` examples in which every task has its rate's share (exactly, over
   blocks: the mixture's rates at read time, so a new mixture over cached tasks needs no
   re-cache), shuffled within the block (`_Reader.block`);
3. this host's shard: global blocks `shard_index, shard_index + num_shards, ...`;
4. each block's examples are laid out (overlong policy, zero-loss drop) and packed best-fit on
   their own, so block b's rows depend on block b alone.

Why not Grain's `MapDataset.mix(...).shuffle().repeat()`: measured on this machine it costs about
260 us of Python index arithmetic per example (32 tasks) against 7 us to read a record; the block
arithmetic here is vectorised (and a block reads few records per task: `_read`).

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

from flan_jax.data.cache import writer as cache
from flan_jax.data.features import converters as features, packing
from flan_jax.data.features.pipeline import PipelineStats
from flan_jax.errors import FlanJaxError


@dataclasses.dataclass(frozen=True)
class StreamSpec:
    """Everything that defines the example stream (picklable, so worker processes rebuild it)."""

    files: tuple[tuple[str, ...], ...]  # per task, its ArrayRecord files
    sizes: tuple[int, ...]  # per task, its number of examples
    rates: tuple[float, ...]
    seed: int = 0
    shard_index: int = 0
    num_shards: int = 1
    eos_id: int | None = None  # kept at the end of targets cut to the lengths (as seqio)


def stream_spec(cache_dir: str, rates: Mapping[str, float], split: str, *, vocabulary: Any = None,
                seed: int = 0, shard_index: int = 0, num_shards: int = 1) -> StreamSpec:
    """Check every task's manifest (a stale or missing cache is an error naming the task and
    field) and describe the stream. `vocabulary`: the run's vocabulary (None: the task's own)."""
    import seqio  # noqa: PLC0415

    files, sizes, eos = [], [], None
    for task in rates:
        manifest = cache.load_manifest(cache_dir, task)
        if manifest is None:
            raise cache.StaleCacheError(f"cache {cache_dir}: task {task!r} is not cached "
                                        f"(flan-jax cache <mixture> --out {cache_dir})")
        vocab = vocabulary or seqio.get_mixture_or_task(task).output_features["targets"].vocabulary
        cache.check_manifest(manifest, task_name=task, vocabulary=vocab, split=split, where=f"cache {cache_dir}")
        eos = int(vocab.eos_id)
        n = int(manifest["splits"][split]["num_examples"])
        if n == 0:
            raise FlanJaxError(f"cache {cache_dir}: task {task!r} has no {split!r} examples")
        folder = cache.task_dir(cache_dir, task)
        files.append(tuple(str(folder / f) for f in manifest["splits"][split]["files"]))
        sizes.append(n)
    if not files:
        raise FlanJaxError("cached pipeline: no tasks")
    return StreamSpec(tuple(files), tuple(sizes), tuple(float(r) for r in rates.values()), seed,
                      shard_index, num_shards, eos)


class _Reader:
    """Random access to one stream's examples: Grain ArrayRecord sources and epoch permutations."""

    def __init__(self, spec: StreamSpec) -> None:
        import grain  # noqa: PLC0415

        self.spec = spec
        self.sources = [grain.sources.ArrayRecordDataSource(list(f)) for f in spec.files]
        weights = np.asarray(spec.rates, np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise FlanJaxError(f"cached pipeline: rates must be >= 0 with a positive sum, got {spec.rates}")
        self.weights = weights / weights.sum()
        self._perms: collections.OrderedDict = collections.OrderedDict()

    def _perm(self, task: int, epoch: int) -> np.ndarray:
        key = (task, epoch)
        if key not in self._perms:
            rng = np.random.default_rng([self.spec.seed, task, epoch])
            self._perms[key] = rng.permutation(self.spec.sizes[task])
            if len(self._perms) > 4 * len(self.sources):
                self._perms.popitem(last=False)
        return self._perms[key]

    def block(self, block: int, block_size: int) -> list[dict[str, np.ndarray]]:
        """The examples of global block `block`: task t contributes floor((b+1) B w_t) -
        floor(b B w_t) of them (so the rates hold exactly over blocks and the count before any
        block is known in closed form); its k-th example overall is epoch k // n_t, item
        perm(seed, t, epoch)[k % n_t]. The block's examples are then shuffled (seed, block)."""
        before = np.floor(block * block_size * self.weights).astype(np.int64)
        after = np.floor((block + 1) * block_size * self.weights).astype(np.int64)
        out: list[dict[str, np.ndarray]] = []
        for t in np.flatnonzero(after > before):
            ks = np.arange(before[t], after[t])
            n = self.spec.sizes[t]
            idx = np.concatenate([self._perm(int(t), int(e))[ks[ks // n == e] % n]
                                  for e in np.unique(ks // n)])
            out += [cache.decode_example(r) for r in _read(self.sources[t], idx.tolist())]
        order = np.random.default_rng([self.spec.seed, 1_000_003, block]).permutation(len(out))
        return [out[i] for i in order]


# Grain's ArrayRecordDataSource.__getitems__ starts a thread pool on every call (about 1 ms here,
# measured with cProfile: 32 tasks x 8 records per block spent 90% of the block in thread start-up),
# while __getitem__ reads one record in a few microseconds; batched reads pay off above this.
_BATCHED_READ_MIN = 256


def _read(source: Any, keys: list[int]) -> Sequence[bytes]:
    """The records at `keys` of a Grain data source, in order (the same bytes either way)."""
    if len(keys) >= _BATCHED_READ_MIN:
        return source.__getitems__(keys)
    return [source[k] for k in keys]


def mixed_examples(spec: StreamSpec, block: int, block_size: int) -> list[dict[str, np.ndarray]]:
    """The examples of this host's `block`-th block (global block shard_index + block * num_shards)."""
    reader = _READERS.get(spec)
    if reader is None:
        reader = _READERS.setdefault(spec, _Reader(spec))
    return reader.block(spec.shard_index + block * spec.num_shards, block_size)


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    stream: StreamSpec
    format_name: str
    lengths: tuple[tuple[str, int], ...]
    pack: bool = True
    overlong: str = "truncate"
    block_size: int = 4096
    bos_id: int = 0  # features.model_bos_id(model): the decoder formats' segment start


_READERS: dict[StreamSpec, _Reader] = {}


def block_rows(spec: BlockSpec, block: int) -> tuple[list[list[features.Segment]], dict[str, int]]:
    """The rows of one block and its counts (examples, truncated, dropped_overlong, zero_loss)."""
    lengths = dict(spec.lengths)
    counts = {"examples": 0, "truncated": 0, "dropped_overlong": 0, "zero_loss": 0}
    segments = []
    for i, ex in enumerate(mixed_examples(spec.stream, block, spec.block_size)):
        seg, outcome = features.example_to_segment(ex, spec.format_name, lengths, spec.overlong,
                                                   where=f"cached block {block}, example {i}",
                                                   eos_id=spec.stream.eos_id, bos_id=spec.bos_id)
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
        batch = features.assemble_rows(rows, self.spec.format_name, lengths, packed=self.spec.pack,
                                       bos_id=self.spec.bos_id)
        self.stats.rows += len(rows)
        self.stats.batches += 1
        return batch


def resolve_rates(leaves: Sequence[Any]) -> dict[str, float]:
    """{task: share} from mixture leaves (data.mixtures.resolve), in the mixture's order."""
    return {leaf.task: float(leaf.share) for leaf in leaves}
