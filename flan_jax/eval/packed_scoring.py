"""Rank classification of a causal decoder from packed tree rows: each prompt runs once with all
of its options after it in the same row, several prompts to a row, one full forward pass, and the
output head only at the scored positions.

`prompt_sharing` runs each prompt once too, but pads every prompt to a multiple of 32 and every
option to a power of two, copies the prompt's cache for every option row, and applies the output
head at every option position (padding included). Here:

* an example is one *unit*: BOS and its input tokens (branch 0, positions 0..n), then each option
  but its last token (branch j for option j, positions n + 1, n + 2, ...). `decoder_branch_ids`
  (`attention.branch_mask`) lets an option see its prompt and itself but no other option, so
  each option is scored exactly as in its own row [BOS, inputs, option];
* units are packed first-fit decreasing into rows of a fixed width W (segment ids 1, 2, ... per
  unit), TOKENS_PER_CALL // W rows per model call;
* one forward pass per call (the training path: block-sparse attention, no cache) returns the
  final hidden states at the distinct scored positions and the target logits (dot products with
  the targets' head rows, `OutputHead.logits_at`). An option's first token is scored at its
  prompt's last position (one head row for all of the example's options), the others at the
  option's own positions;
* the head's logsumexp runs on those hidden states pooled across calls, HEAD_CHUNK rows at a time
  (`OutputHead.logsumexp`, over vocabulary blocks): no padded position reaches the 262,144-id
  head but the last chunk's.

Worked example (BOS 2; W 64, first 12 shown): examples e0 inputs [7, 8, 5] options [31, 1] and
[40, 41, 1]; e1 inputs [6, 9] option [33, 1] (targets with their EOS 1). Units longest first:

    tokens     [2, 7, 8, 5, 31, 40, 41, 2, 6, 9, 33, 0]   (e0: BOS 7 8 5 | 31 | 40 41;
    segments   [1, 1, 1, 1, 1,  1,  1,  2, 2, 2, 2,  0]    e1: BOS 6 9 | 33)
    positions  [0, 1, 2, 3, 4,  4,  5,  0, 1, 2, 3,  0]
    branches   [0, 0, 0, 0, 1,  2,  2,  0, 0, 0, 1,  0]
    scored     index   [3,  4, 3,  5,  6, 9,  10]     e0 option 0: 31 from index 3, 1 from 4;
               targets [31, 1, 40, 41, 1, 33, 1]      option 1: 40 from 3, 41 from 5, 1 from 6;
               slot    [0,  1, 0,  2,  3, 4,  5]      e1: 33 from 9, 1 from 10; one sum per option
    head at    [3, 4, 5, 6, 9, 10]                    (6 distinct positions for 7 scored tokens)

Shapes (jit compilations): the rows have one or a few widths W of `WIDTHS` (`row_layout`:
padding against attention width, long prompts apart from short ones); a call holds rows =
TOKENS_PER_CALL // W rows (a width's last call: the smallest power of two that holds the rest),
and the head's logsumexp takes HEAD_CHUNK rows (the last chunk LAST_HEAD_CHUNK when it fits). So
an evaluation compiles about two programs per width used plus the head's, not one per length
(`bench/eval_throughput.py` prints the count: 3 on the flan-nl set, 7 at BoolQ lengths).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.data.features import converters as features
from flan_jax.errors import FlanJaxError
from flan_jax.eval import scoring
from flan_jax.eval.prompt_sharing import next_pow2, split_segment

# Row widths: steps of 32 up to 256, then about an eighth of the width, so a unit wastes little
# of a row sized for it (one program per width used and call size).
WIDTHS = (64, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 2048, 3072,
          4096, 6144, 8192)
COMPILE_COST = 1024  # a width's compilations in row_layout's cost (positions: ~2 s of Gemma 3 270M here)
TOKENS_PER_CALL = 4096  # positions per model call (W x rows; flan-nl set forward: 0.93x the time of 2048)
HEAD_CHUNK = 256  # head rows per output-head logsumexp call (pooled across calls)
LAST_HEAD_CHUNK = 64  # the last, partial chunk: this many rows when they suffice
# The row width at which a position's attention costs as much as the rest of its layer: Gemma 3
# 270M, float32, 2-core CPU, BoolQ-length units: rows of 1,024 took 30.4 s and rows of 256 18.0 s
# for the same 32 examples (7,168 and 8,192 positions), so time ~ positions x (1 + W / 570).
ATTENTION_WIDTH = 570
IN_FLIGHT = 2  # model calls dispatched and not yet read back (score_segments)


@dataclasses.dataclass
class Call:
    """The arrays of one model call (module docstring) and where its scores go.

    tokens/positions/segments/branches [rows, W] int32; head_index [rows x W] the distinct flat
    positions whose logits the head computes, the first `num_head` real;
    score_index/score_slot/score_targets [N_max] per scored token its flat position, that
    position's entry in head_index and the target id there, the first S = len(score_segment)
    real (N_max = rows x W unless a call has more scored tokens than positions); score_segment
    [S] the (example, option) segment each scored token adds to, score_weight [S] its weight.
    """

    arrays: dict[str, np.ndarray]
    score_segment: np.ndarray
    score_weight: np.ndarray
    num_head: int


def row_layout(lengths: Sequence[int]) -> list[tuple[int, list[list[int]]]]:
    """[(W, rows of unit indices)]: the units packed first-fit decreasing into rows of one or more
    widths of WIDTHS, the layout of least cost, where a row of width W costs W x (1 + W /
    ATTENTION_WIDTH) (body work per position, plus attention over the row's keys) and each width
    used costs COMPILE_COST more (its programs' compilation). The units up to some
    width share rows of that width and the longer ones are laid out the same way, recursively, so
    a few long prompts do not widen every row. Wide rows pack tightly, narrow ones attend over
    fewer keys.

    Examples (costs in positions): units [33] * 8 -> [(160, [[0, 1, 2, 3], [4, 5, 6, 7]])] (2 x
    160 x 1.28 = 410 against 3 rows of 128: 470, or 8 of 64: 570); units [100] * 40 + [900] ->
    20 rows of 224 and one of 1,024 (6,240 + 2,864 + 2 x 1,024 = 11,152 against 5 rows of 1,024
    and one width: 15,342).
    Raises FlanJaxError for a unit longer than the widest."""
    longest = max(lengths)
    if longest > WIDTHS[-1]:
        raise FlanJaxError(f"rank classification: a prompt with its options ({longest} tokens) exceeds the "
                           f"widest packed row ({WIDTHS[-1]}); score it with method='rows'")
    best: dict[int, tuple[float, list]] = {len(WIDTHS): (0.0, [])}
    for k in reversed(range(len(WIDTHS))):  # best[k]: the units longer than WIDTHS[k - 1]
        floor = WIDTHS[k - 1] if k else 0
        best[k] = (float("inf"), [])
        for b in range(k, len(WIDTHS)):  # units in (floor, WIDTHS[b]] share rows of WIDTHS[b]
            group = [i for i, n in enumerate(lengths) if floor < n <= WIDTHS[b]]
            cost, rows_by_width = best[b + 1]
            if group:
                w = WIDTHS[b]
                rows = [[group[i] for i in r] for r in pack_first_fit([lengths[i] for i in group], w)]
                cost += len(rows) * w * (1 + w / ATTENTION_WIDTH) + COMPILE_COST
                rows_by_width = [(w, rows)] + rows_by_width
            if cost < best[k][0]:
                best[k] = (cost, rows_by_width)
    return best[0][1]


def pack_first_fit(sizes: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of `sizes` packed first-fit decreasing into bins of `capacity`.

    Example: sizes [5, 3, 4, 2], capacity 8 -> [[0, 1], [2, 3]] (5 + 3, then 4 + 2)."""
    bins: list[list[int]] = []
    room = np.zeros(len(sizes), np.int64)  # room[b] left in bin b (at most one bin per item)
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        fits = np.flatnonzero(room[:len(bins)] >= sizes[i])
        if fits.size:
            bins[fits[0]].append(i)
            room[fits[0]] -= sizes[i]
        else:
            bins.append([i])
            room[len(bins) - 1] = capacity - sizes[i]
    return bins


def unit(options: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], bos_id: int
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]]:
    """One example's tree row piece: (tokens, positions, branches) [U] and per option j
    (j, scored offsets into the unit, their targets, their weights).

    options: `split_segment`'s (prompt ids, option ids, weights) per option (same prompt).
    Example: prompt [7, 8, 5], options [31, 1] and [40, 41, 1] (weights 1), BOS 2 ->
    tokens [2, 7, 8, 5, 31, 40, 41], positions [0, 1, 2, 3, 4, 4, 5], branches
    [0, 0, 0, 0, 1, 2, 2]; option 0 scored at [3, 4] for [31, 1], option 1 at [3, 5, 6] for
    [40, 41, 1]."""
    prompt = options[0][0]
    n = int(prompt.size)
    tokens = [np.concatenate([[bos_id], prompt]).astype(np.int32)]
    positions = [np.arange(n + 1, dtype=np.int32)]
    branches = [np.zeros(n + 1, np.int32)]
    scored, at = [], n + 1
    for j, (_, option, weights) in enumerate(options):
        k = int(option.size)
        if k == 0:  # nothing to score (no weighted token): log-likelihood 0, 0 tokens
            continue
        tokens.append(option[:-1].astype(np.int32))
        positions.append(np.arange(n + 1, n + k, dtype=np.int32))
        branches.append(np.full(k - 1, j + 1, np.int32))
        offsets = np.concatenate([[n], at + np.arange(k - 1)])  # where option token i is predicted
        keep = np.nonzero(weights > 0)[0]
        scored.append((j, offsets[keep], option[keep], weights[keep]))
        at += k - 1
    return np.concatenate(tokens), np.concatenate(positions), np.concatenate(branches), scored


def build_calls(parts: Sequence[Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]],
                segment_ids: Sequence[Sequence[int]], bos_id: int,
                tokens_per_call: int = TOKENS_PER_CALL) -> list[Call]:
    """The calls scoring every option (module docstring layout).

    parts[e]: per option of example e, `split_segment`'s (prompt ids, option ids, weights) (the
    prompt is the same for all of them); segment_ids[e][j]: the caller's index of that option.
    """
    units = [unit(ex, bos_id) for ex in parts]
    calls = []
    for width, bins in row_layout([u[0].size for u in units]):
        per_call = max(1, tokens_per_call // width)
        for start in range(0, len(bins), per_call):
            chunk = bins[start:start + per_call]
            calls.append(_call(units, segment_ids, chunk, min(per_call, next_pow2(len(chunk))), width))
    return calls


def _call(units, segment_ids, chunk, rows, width) -> Call:
    a = {name: np.zeros((rows, width), np.int32) for name in ("tokens", "positions", "segments", "branches")}
    index, targets, seg_of, weight_of = [], [], [], []
    for r, b in enumerate(chunk):
        at = 0
        for s, e in enumerate(b, start=1):
            tokens, positions, branches, scored = units[e]
            u = tokens.size
            a["tokens"][r, at:at + u] = tokens
            a["positions"][r, at:at + u] = positions
            a["segments"][r, at:at + u] = s
            a["branches"][r, at:at + u] = branches
            for j, offsets, tgt, w in scored:
                index.extend(r * width + at + offsets)
                targets.extend(tgt)
                seg_of.extend([segment_ids[e][j]] * offsets.size)
                weight_of.extend(w)
            at += u
    # the head runs once per distinct position (an example's options all read its prompt's last)
    positions, slot = np.unique(np.asarray(index, np.int64), return_inverse=True)
    num = len(index)
    n_max = rows * width * -(-max(num, 1) // (rows * width))  # rows x W unless more scored than positions
    a["head_index"] = np.zeros(rows * width, np.int32)
    a["head_index"][:positions.size] = positions
    for name, values in (("score_index", index), ("score_slot", slot), ("score_targets", targets)):
        a[name] = np.zeros(n_max, np.int32)
        a[name][:num] = values
    return Call(a, np.asarray(seg_of, np.int64), np.asarray(weight_of, np.float32), int(positions.size))


def forward_fn(model: Any):
    """A jitted (params, Call.arrays) -> (final hidden states at head_index [H_max, D], target
    logits [N_max] float32) (cached per model)."""

    def run(params: Any, a: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        batch = {"decoder_input_tokens": a["tokens"], "decoder_positions": a["positions"],
                 "decoder_segment_ids": a["segments"], "decoder_branch_ids": a["branches"]}
        hidden, head = model.apply({"params": params}, batch, return_hidden=True)
        flat = hidden.reshape(-1, hidden.shape[-1])  # [rows * W, D]
        target = head.logits_at(jnp.take(flat, a["score_index"], axis=0), a["score_targets"])  # [N_max]
        return jnp.take(flat, a["head_index"], axis=0), target

    return scoring.jitted_per_model(model, "packed", lambda: run)


def logsumexp_fn(model: Any):
    """A jitted (params, hidden [HEAD_CHUNK, D]) -> the head's logsumexp per row [HEAD_CHUNK]
    (`OutputHead.logsumexp`; cached per model). The one-token forward that yields the head is
    dead code XLA removes."""

    def run(params: Any, x: jax.Array) -> jax.Array:
        _, head = model.apply({"params": params}, {"decoder_input_tokens": jnp.zeros((1, 1), jnp.int32)},
                              return_hidden=True)
        return head.logsumexp(x)

    return scoring.jitted_per_model(model, "packed logsumexp", lambda: run)


def score_segments(model: Any, params: Any, segments: Sequence[features.Segment], owner: np.ndarray,
                   bos_id: int, tokens_per_call: int = TOKENS_PER_CALL) -> tuple[np.ndarray, np.ndarray]:
    """(log-likelihood, scored tokens) per segment, in `segments` order; the same contract as
    `prompt_sharing.score_segments` (segments from `rank_classification.option_rows`, owner[j]
    the example of segment j, every segment of an example with the same prompt).

    The calls' head rows are pooled across calls into chunks of HEAD_CHUNK for the head's
    logsumexp, so the head's products are wide (few padded rows, one program for all)."""
    by_example: dict[int, list[int]] = {}
    for j, i in enumerate(owner):
        by_example.setdefault(int(i), []).append(j)
    examples = list(by_example)
    parts = [[split_segment(segments[j]) for j in by_example[i]] for i in examples]
    ids = [by_example[i] for i in examples]
    forward, logsumexp = forward_fn(model), logsumexp_fn(model)
    # once on the device: numpy parameters would be copied into every call (1 GB each for Gemma 3 270M)
    params = jax.device_put(params)
    pending: list[tuple[Call, Any]] = []
    finished: list[tuple[Call, np.ndarray, int]] = []  # (call, target logits, its first row in the pooled head rows)
    waiting: list[np.ndarray] = []  # head rows not yet in a chunk
    lse_parts: list[jax.Array] = []
    pooled = 0

    def read_oldest() -> None:
        nonlocal pooled, waiting
        call, (heads, target) = pending.pop(0)
        finished.append((call, np.asarray(target)[: call.score_segment.size], pooled))
        waiting.append(np.asarray(heads)[: call.num_head])
        pooled += call.num_head
        rows = np.concatenate(waiting)
        full = rows.shape[0] // HEAD_CHUNK * HEAD_CHUNK
        lse_parts.extend(logsumexp(params, rows[c:c + HEAD_CHUNK]) for c in range(0, full, HEAD_CHUNK))
        waiting = [rows[full:]]

    # The next call is dispatched while the previous one computes, but at most IN_FLIGHT calls are
    # outstanding: dispatching all of MMLU validation's ~100 calls at once held their buffers
    # together and reached 24 GB in a minute (killed).
    for call in build_calls(parts, ids, bos_id, tokens_per_call):
        pending.append((call, forward(params, call.arrays)))
        if len(pending) > IN_FLIGHT:
            read_oldest()
    while pending:
        read_oldest()
    rest = np.concatenate(waiting)
    if rest.shape[0]:
        size = LAST_HEAD_CHUNK if rest.shape[0] <= LAST_HEAD_CHUNK else HEAD_CHUNK
        lse_parts.append(logsumexp(params, np.pad(rest, ((0, size - rest.shape[0]), (0, 0))))[: rest.shape[0]])
    lse = np.concatenate([np.asarray(x) for x in lse_parts]) if lse_parts else np.zeros(0, np.float32)
    ll = np.zeros(len(segments), np.float32)
    n = np.zeros(len(segments), np.float32)
    for call, target, first in finished:
        logp = target - lse[first + call.arrays["score_slot"][: target.size]]
        np.add.at(ll, call.score_segment, logp * call.score_weight)
        np.add.at(n, call.score_segment, call.score_weight)
    return ll, n
