"""Packing: several examples per batch row, kept apart by segment ids.

A packer receives laid-out examples (`features.Segment`: encoder tokens, decoder tokens) and
groups them into rows whose encoder and decoder parts both fit the row capacity; for `enc_dec`
the two lengths constrain the same row. `features.assemble_rows` then writes the arrays, with
segment ids 1, 2, 3... (0 on padding) and positions restarting at 0, so attention masks built from
segment ids keep every example to itself.

Worked example (decoder format, capacity 8, segments of decoder length 5, 4, 3, 4 arriving in
that order, one buffer):

    best fit decreasing: sorted 5, 4, 4, 3 -> rows [5, 3] and [4, 4]      (2 rows, 100% full)
    greedy (seqio):      in order         -> rows [5], [4, 3], [4]        (3 rows, 67% full)

Two packers:

* `BestFitPacker`: best-fit-decreasing over a bounded buffer of examples. Each round sorts the
  buffer by size (largest first) and puts each example into the open row where it leaves the least
  free space (or opens a row). Rows that can no longer take even the smallest example of the round
  are emitted; the others stay open for the next round, at most `max_open_rows` of them (the fullest
  are emitted first when over) and for at most `max_rounds_open` rounds. Deterministic: the rows
  depend only on the order of the input.
* `GreedyPacker`: seqio's algorithm (`seqio.utils.trim_and_pack_dataset`, no custom ops) in numpy:
  append in arrival order, start a new row when the next example does not fit, and close the row
  every `flush_every` examples (seqio packs batches of max(lengths) examples independently). It
  reproduces seqio's packed rows array for array, so the equality tests can run on packed data.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from flan_jax.data.features.converters import Segment, check_format

Row = list[Segment]


class GreedyPacker:
    """Next-fit in arrival order, as seqio packs (see module docstring)."""

    def __init__(self, capacity: tuple[int, int], flush_every: int) -> None:
        self.enc_cap, self.dec_cap = capacity
        self.flush_every = flush_every
        self._row: Row = []
        self._enc = self._dec = self._count = 0

    def add(self, seg: Segment) -> list[Row]:
        out = []
        e, d = seg.encoder.size, seg.decoder.size
        if self._row and (self._enc + e > self.enc_cap or self._dec + d > self.dec_cap):
            out.append(self._row)
            self._row, self._enc, self._dec = [], 0, 0
        self._row.append(seg)
        self._enc += e
        self._dec += d
        self._count += 1
        if self._count % self.flush_every == 0:
            out.append(self._row)
            self._row, self._enc, self._dec = [], 0, 0
        return out

    def flush(self) -> list[Row]:
        out = [self._row] if self._row else []
        self._row, self._enc, self._dec = [], 0, 0
        return out


class BestFitPacker:
    """Best-fit-decreasing over a bounded buffer, with open rows carried between rounds."""

    def __init__(self, capacity: tuple[int, int], buffer_size: int = 1024, max_open_rows: int = 64,
                 max_rounds_open: int = 8) -> None:
        self.enc_cap, self.dec_cap = capacity
        self.buffer_size = buffer_size
        self.max_open_rows = max_open_rows
        self.max_rounds_open = max_rounds_open
        self._buffer: list[Segment] = []
        self._rows: list[Row] = []  # open rows, oldest first
        self._free = np.zeros((0, 2), np.int64)  # free (encoder, decoder) slots per open row
        self._age = np.zeros(0, np.int64)  # rounds each open row has been carried over

    def add(self, seg: Segment) -> list[Row]:
        self._buffer.append(seg)
        if len(self._buffer) < self.buffer_size:
            return []
        return self._round(final=False)

    def flush(self) -> list[Row]:
        return self._round(final=True)

    def _round(self, final: bool) -> list[Row]:
        items, self._buffer = self._buffer, []
        if items:
            sizes = np.array([(s.encoder.size, s.decoder.size) for s in items], np.int64)
            self._place(items, sizes)
            smallest = sizes.min(axis=0)
        else:
            smallest = np.zeros(2, np.int64)
        if final:
            keep = np.zeros(len(self._rows), bool)
        else:
            # A row stays open while the smallest example of this round would still fit, for at
            # most max_rounds_open rounds (so no example waits long to be trained on).
            keep = (self._free >= smallest).all(axis=1) & (self._age < self.max_rounds_open)
            over = int(keep.sum()) - self.max_open_rows
            if over > 0:  # too many open rows: emit the fullest ones
                free_frac = self._free[:, 0] / max(self.enc_cap, 1) + self._free[:, 1] / self.dec_cap
                open_idx = np.flatnonzero(keep)
                keep[open_idx[np.argsort(free_frac[open_idx], kind="stable")[:over]]] = False
        out = [row for row, k in zip(self._rows, keep) if not k]
        self._rows = [row for row, k in zip(self._rows, keep) if k]
        self._free = self._free[keep]
        self._age = self._age[keep] + 1
        return out

    def _place(self, items: Sequence[Segment], sizes: np.ndarray) -> None:
        caps = np.array([max(self.enc_cap, 1), self.dec_cap], np.float64)
        order = np.argsort(-(sizes / caps).max(axis=1), kind="stable")
        n_old = len(self._rows)
        free = np.zeros((n_old + len(items), 2), np.int64)
        free[:n_old] = self._free
        weight = 1.0 / caps
        n = n_old
        for i in order:
            size = sizes[i]
            cand = free[:n]
            fits = (cand >= size).all(axis=1)
            if fits.any():
                score = np.where(fits, (cand - size) @ weight, np.inf)
                j = int(np.argmin(score))
            else:
                j = n
                n += 1
                free[j] = (self.enc_cap, self.dec_cap)
                self._rows.append([])
            self._rows[j].append(items[i])
            free[j] -= size
        self._free = free[:n]
        self._age = np.r_[self._age, np.zeros(n - n_old, np.int64)]


def pack_segments(segments: Iterable[Segment], packer: GreedyPacker | BestFitPacker) -> list[Row]:
    """All rows of a finite stream of segments (tests and benchmarks)."""
    rows: list[Row] = []
    for seg in segments:
        rows.extend(packer.add(seg))
    rows.extend(packer.flush())
    return rows


def unpack(row: Mapping[str, np.ndarray], format_name: str) -> list[dict[str, np.ndarray]]:
    """Recover the examples of one batch row (a dict of 1-D arrays): the inverse of packing.

    Each example comes back as {"inputs", "targets"}; for the decoder formats the split is at the
    first token with loss weight 1, and `loss_weights` is added when the target weights are not all
    1 (chat examples). Unpacked rows (no segment ids) give their one example.

        decoder_target_tokens = [7, 3, 1, 8, 9, 4, 1, 0]
        decoder_loss_weights  = [0, 1, 1, 0, 0, 1, 1, 0]
        decoder_segment_ids   = [1, 1, 1, 2, 2, 2, 2, 0]
        -> [{"inputs": [7], "targets": [3, 1]}, {"inputs": [8, 9], "targets": [4, 1]}]
    """
    check_format(format_name)
    dec = np.asarray(row["decoder_target_tokens"])
    weights = np.asarray(row["decoder_loss_weights"])
    dec_seg = np.asarray(row.get("decoder_segment_ids", (dec != 0).astype(np.int32)))
    if format_name == "enc_dec":
        enc = np.asarray(row["encoder_input_tokens"])
        enc_seg = np.asarray(row.get("encoder_segment_ids", (enc != 0).astype(np.int32)))
    out = []
    for s in range(1, int(dec_seg.max(initial=0)) + 1):
        in_seg = dec_seg == s
        tokens, w = dec[in_seg], weights[in_seg]
        if format_name == "enc_dec":
            ex: dict[str, Any] = {"inputs": enc[enc_seg == s], "targets": tokens}
        else:
            first = int(np.argmax(w > 0))
            ex = {"inputs": tokens[:first], "targets": tokens[first:]}
            w = w[first:]
        if not np.all(w == 1):
            ex["loss_weights"] = w
        out.append(ex)
    return out


def seqio_trim_and_pack(
    examples: Sequence[Mapping[str, Any]], feature_lengths: Mapping[str, int]
) -> list[dict[str, np.ndarray]]:
    """Pack raw feature dicts with `seqio.utils.trim_and_pack_dataset` (the greedy reference).

    Kept for comparison (bench/packing.py): each output row has `<key>`, `<key>_segment_ids` and
    `<key>_positions` per feature. Imports TensorFlow.
    """
    import seqio  # noqa: PLC0415  (slow import, reference only)
    import tensorflow as tf  # noqa: PLC0415

    keys = list(feature_lengths)

    def gen():
        for ex in examples:
            yield {k: np.asarray(ex[k], np.int32) for k in keys}

    spec = {k: tf.TensorSpec([None], tf.int32) for k in keys}
    ds = tf.data.Dataset.from_generator(gen, output_signature=spec)
    return list(seqio.utils.trim_and_pack_dataset(ds, dict(feature_lengths)).as_numpy_iterator())


def seqio_flush_every(format_name: str, capacity: tuple[int, int]) -> int:
    """How many examples seqio packs together before closing its row (its padded batch size)."""
    check_format(format_name)
    return max(capacity)
