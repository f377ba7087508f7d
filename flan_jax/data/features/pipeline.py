"""Tokenized examples -> a deterministic iterator of fixed-shape numpy batches for the trainer.

    source (seqio task/mixture name, or any iterable of token dicts)
      -> this host's shard -> overlong policy (truncate / drop, counted) -> zero-loss drop (counted)
      -> layout per format (features.example_to_segment)
      -> rows: packed (best fit or seqio-style greedy) or one example per row
      -> batches of `batch_size` rows (features.assemble_rows)

Worked example:

    from flan_jax.data.features import pipeline
    examples = [{"inputs": [7, 8], "targets": [3, 1]}, {"inputs": [5], "targets": [4, 9, 1]}]
    it = pipeline.batches(examples, "decoder", {"inputs": 3, "targets": 3}, batch_size=1)
    next(it)
    # {"decoder_target_tokens": [[7, 8, 3, 1, 0, 0]],
    #  "decoder_input_tokens":  [[0, 7, 8, 3, 0, 0]],
    #  "decoder_loss_weights":  [[0, 0, 1, 1, 0, 0]],
    #  "decoder_segment_ids":   [[1, 1, 1, 1, 0, 0]],
    #  "decoder_positions":     [[0, 1, 2, 3, 0, 0]]}
    it.stats.as_dict()   # examples, truncated, dropped_overlong, zero_loss, rows, non-pad fractions,
                         # row_fill (mean fill of each row's fuller side: the packing efficiency)

(the two examples, 4 + 4 tokens, do not fit one row of 6, so each gets its own row).

Determinism and resuming: the batches are a pure function of (source order, arguments). For a seqio
source the order is fixed by `seed` (shuffling and mixture sampling) and `shard_index/num_shards`
(seqio.ShardInfo: each host reads its own shard). `start_batch=n` replays the stream and skips the
first n batches without building their arrays, so a run resumed at data position n sees exactly
the batches an uninterrupted run sees from batch n on. Checkpoint the number of batches consumed.
"""
from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from flan_jax.data.features import converters as features, packing
from flan_jax.errors import FlanJaxError

PACKERS = ("best_fit", "greedy")


@dataclasses.dataclass
class PipelineStats:
    """Counts over everything this iterator has read (skipped batches included)."""

    examples: int = 0  # read from this shard
    truncated: int = 0  # cut to the lengths and kept
    dropped_overlong: int = 0  # longer than the lengths with overlong="drop"
    zero_loss: int = 0  # no token with loss weight 1 (e.g. a chat without assistant turn)
    rows: int = 0
    batches: int = 0  # emitted or skipped
    encoder_tokens: int = 0  # non-pad tokens placed in rows
    decoder_tokens: int = 0
    encoder_slots: int = 0  # all positions of those rows
    decoder_slots: int = 0
    fill_sum: float = 0.0  # sum over rows of the fuller side's fill fraction

    @property
    def non_pad_fraction(self) -> float:
        """Non-pad tokens / all positions, encoder and decoder together."""
        slots = self.encoder_slots + self.decoder_slots
        return (self.encoder_tokens + self.decoder_tokens) / slots if slots else 0.0

    @property
    def row_fill(self) -> float:
        """Mean over rows of the fill of the side that fills first (encoder or decoder); for the
        decoder formats the same as the decoder non-pad fraction."""
        return self.fill_sum / self.rows if self.rows else 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dataclasses.asdict(self)
        del out["fill_sum"]
        out["non_pad_fraction"] = self.non_pad_fraction
        out["row_fill"] = self.row_fill
        out["decoder_non_pad_fraction"] = self.decoder_tokens / self.decoder_slots if self.decoder_slots else 0.0
        if self.encoder_slots:
            out["encoder_non_pad_fraction"] = self.encoder_tokens / self.encoder_slots
        return out


class BatchIterator:
    """An iterator of batch dicts with live `stats` (a PipelineStats)."""

    def __init__(self, generator: Iterator[dict[str, np.ndarray]], stats: PipelineStats) -> None:
        self._generator = generator
        self.stats = stats

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        return next(self._generator)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise FlanJaxError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _seqio_examples(
    name: str, split: str, shard_index: int, num_shards: int, seed: int, shuffle: bool,
    num_epochs: int | None,
) -> tuple[Iterator[Mapping[str, Any]], int | None]:
    """(examples, the EOS id seqio appends after trimming targets, or None when it adds none)."""
    import seqio  # noqa: PLC0415  (TensorFlow import: only when reading a seqio task)

    try:
        provider = seqio.get_mixture_or_task(name)
    except ValueError as e:
        raise FlanJaxError(f"no seqio task or mixture named {name!r} is registered ({e})") from None
    ds = provider.get_dataset(
        sequence_length=None,  # untrimmed: this pipeline applies and counts the overlong policy
        split=split,
        shuffle=shuffle,
        seed=seed,
        shard_info=seqio.ShardInfo(index=shard_index, num_shards=num_shards),
        num_epochs=num_epochs,
    )
    feature = provider.output_features.get("targets")
    eos_id = int(feature.vocabulary.eos_id) if feature is not None and feature.add_eos else None
    return ds.as_numpy_iterator(), eos_id


def batches(
    source: str | Iterable[Mapping[str, Any]],
    format_name: str,
    lengths: Mapping[str, int],
    batch_size: int,
    *,
    pack: bool = True,
    packer: str = "best_fit",
    overlong: str = "truncate",
    split: str = "train",
    shard_index: int = 0,
    num_shards: int = 1,
    seed: int = 0,
    shuffle: bool = True,
    num_epochs: int | None = 1,
    start_batch: int = 0,
    drop_remainder: bool = True,
    buffer_size: int = 1024,
    max_open_rows: int = 64,
    bos_id: int = 0,
    eos_id: int | None = None,
) -> BatchIterator:
    """Batches of `format_name` rows from a seqio task/mixture name or an iterable of examples.

    Examples are {"inputs": ids, "targets": ids (ending in EOS)} with an optional `loss_weights`
    aligned with targets (see `chat.chat_example`). `lengths` = {"inputs": Li, "targets": Lt}: the
    encoder/decoder lengths for enc_dec, and a row of Li + Lt for the decoder formats. For an
    iterable source, `shard_index/num_shards` keep every num_shards-th example and `seed`, `split`,
    `shuffle`, `num_epochs` are unused (the iterable's order is the order). With
    drop_remainder=False the last batch is filled up with all-padding rows (loss weight 0).
    `bos_id` starts each segment of the decoder formats (`features.model_bos_id(model)`; 0 by
    default, as seqio).
    Overlong targets that end in EOS keep it after truncation, as the task's own seqio output
    does (`append_eos_after_trim`): the EOS id comes from a seqio source's targets feature
    (its vocabulary's `eos_id`, when `add_eos`); for an iterable source pass `eos_id`.
    """
    features.check_format(format_name)
    lengths = features.check_lengths(lengths)
    batch_size = _check_int("batch_size", batch_size, 1)
    num_shards = _check_int("num_shards", num_shards, 1)
    shard_index = _check_int("shard_index", shard_index, 0)
    if shard_index >= num_shards:
        raise FlanJaxError(f"shard_index {shard_index} is not below num_shards {num_shards}")
    start_batch = _check_int("start_batch", start_batch, 0)
    if packer not in PACKERS:
        raise FlanJaxError(f"unknown packer {packer!r}; expected one of {PACKERS}")
    if overlong not in features.OVERLONG_POLICIES:
        raise FlanJaxError(f"unknown overlong policy {overlong!r}; expected one of {features.OVERLONG_POLICIES}")
    _check_int("buffer_size", buffer_size, 1)
    _check_int("max_open_rows", max_open_rows, 0)

    if isinstance(source, str):
        examples, eos_id = _seqio_examples(source, split, shard_index, num_shards, seed, shuffle, num_epochs)
        where = f"task {source!r} example"
    else:
        examples = itertools.islice(iter(source), shard_index, None, num_shards)
        where = "example"
    stats = PipelineStats()
    capacity = features.row_capacity(format_name, lengths)
    if not pack:
        row_packer = None
    elif packer == "greedy":
        row_packer = packing.GreedyPacker(capacity, packing.seqio_flush_every(format_name, capacity))
    else:
        row_packer = packing.BestFitPacker(capacity, buffer_size, max_open_rows)

    def rows() -> Iterator[packing.Row]:
        for i, ex in enumerate(examples):
            stats.examples += 1
            seg, outcome = features.example_to_segment(ex, format_name, lengths, overlong, f"{where} {i}",
                                                       eos_id=eos_id, bos_id=bos_id)
            if outcome == "truncated":
                stats.truncated += 1
            elif outcome == "dropped":
                stats.dropped_overlong += 1
            elif outcome == "zero_loss":
                stats.zero_loss += 1
            if seg is None:
                continue
            if row_packer is None:
                yield [seg]
            else:
                yield from row_packer.add(seg)
        if row_packer is not None:
            yield from row_packer.flush()

    def generate() -> Iterator[dict[str, np.ndarray]]:
        pending: list[packing.Row] = []
        for row in rows():
            stats.rows += 1
            enc_tokens = sum(s.encoder.size for s in row)
            dec_tokens = sum(s.decoder.size for s in row)
            stats.encoder_tokens += enc_tokens
            stats.decoder_tokens += dec_tokens
            stats.fill_sum += max(enc_tokens / capacity[0] if capacity[0] else 0.0, dec_tokens / capacity[1])
            stats.encoder_slots += capacity[0]
            stats.decoder_slots += capacity[1]
            pending.append(row)
            if len(pending) == batch_size:
                stats.batches += 1
                if stats.batches > start_batch:
                    yield features.assemble_rows(pending, format_name, lengths, packed=pack, bos_id=bos_id)
                pending = []
        if pending and not drop_remainder:
            stats.batches += 1
            if stats.batches > start_batch:
                batch = features.assemble_rows(pending, format_name, lengths, packed=pack, bos_id=bos_id)
                yield {k: np.pad(v, ((0, batch_size - len(pending)), (0, 0))) for k, v in batch.items()}

    return BatchIterator(generate(), stats)
