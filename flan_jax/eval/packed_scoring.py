"""Rank classification of a causal decoder from packed prompt rows: each prompt runs once, packed
with others, and its options are scored from the prompt's cache with no padded option positions.

`prompt_sharing` runs each prompt once too, but pads every prompt to a multiple of 32 and every
option to a power of two, and applies the output head at every option position (padding
included). With Gemma's 262,144-id head that padding costs more than the prompts. Here:

* prompts are packed first-fit-decreasing into rows of a fixed width W (segment ids 1, 2, ...
  per prompt, positions restarting at 0), so a row holds several prompts and little padding;
* one decode call fills the rows' key/value cache; every option then continues its own prompt
  from a copy of that cache row. Options of *different* prompts of one cache row share an option
  row (their segment ids differ, so they never see each other); options of the same prompt go to
  different option rows. Option tokens sit at cache slots W, W + 1, ... and at positions
  prompt length, prompt length + 1, ..., so each sees exactly its prompt and its own earlier
  tokens, as in one row per (example, option);
* the output head runs only at the scored positions, in chunks of `HEAD_CHUNK`, inside a loop
  whose trip count is the number of scored positions (no padded position reaches the head).

Worked example (BOS 2; W 64, first 8 shown; option width 8): examples e0 inputs [7, 8, 5]
options [31, 1] and [40, 41, 1]; e1 inputs [6, 9] option [33, 1] (targets with their EOS 1)

    prompt row      tokens    [2, 7, 8, 2, 6, 0, 0, 0]   (e0: BOS 7 8, e1: BOS 6; all but the
                    segments  [1, 1, 1, 2, 2, 0, 0, 0]    last input token, which starts the
                    positions [0, 1, 2, 0, 1, 0, 0, 0]    option rows)
    option row 0    tokens    [5, 40, 41, 9, 33, 0, 0, 0]   (e0's option 1, then e1's option 0;
                    segments  [1, 1,  1,  2, 2,  0, 0, 0]    longest first; both read prompt
                    positions [3, 4,  5,  2, 3,  0, 0, 0]    row 0, at cache slots 64..71)
    option row 1    tokens    [5, 31, 0, ...]  segments [1, 1, 0, ...]  positions [3, 4, 0, ...]
    scored          7 positions, targets [40, 41, 1, 33, 1] in row 0, [31, 1] in row 1: one
                    sum per option

Shapes (jit compilations): W is the smallest of `WIDTHS` holding the longest prompt; a call
holds `rows` = tokens_per_call // W prompt rows (the last call: the smallest power of two that
holds the rest); option rows per call are a multiple of `rows`; the option width is one power of
two per evaluation. So an evaluation compiles a handful of programs, not one per length
(`bench/eval_throughput.py` prints the count).
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
from flan_jax.eval import prompt_sharing, scoring
from flan_jax.eval.prompt_sharing import split_segment

WIDTHS = (64, 128, 256, 512, 1024, 2048, 4096, 8192)  # prompt row widths (one program each)
TOKENS_PER_CALL = 2048  # prompt tokens per model call (W x rows)
HEAD_CHUNK = 64  # scored positions per output-head product
PROMPTS_PER_ROW = 4  # rows are wide enough for this many prompts of mean length
MIN_OPTION_WIDTH = 8  # option rows are at least this wide
IN_FLIGHT = 2  # model calls dispatched and not yet read back (score_segments)


@dataclasses.dataclass
class Call:
    """The arrays of one model call (module docstring) and where its scores go.

    prompt_* [rows, W]; option_* [O, T] with option_owner [O] the prompt row each option row
    continues; score_index/score_targets [N_max] (flat index into the O x T option positions,
    the target id there; the first `num_scored` entries are real); score_segment [num_scored]
    the (example, option) segment each scored position adds to, score_weight its weight.
    """

    arrays: dict[str, np.ndarray]
    score_segment: np.ndarray
    score_weight: np.ndarray


def _pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def prompt_width(lengths: Sequence[int]) -> int:
    """The smallest row width of WIDTHS holding the longest prompt and PROMPTS_PER_ROW prompts of
    mean length (so rows pack well). Example: prompts of 21-61 tokens (mean 41) -> 256.
    Raises FlanJaxError for a prompt longer than the widest."""
    need = max(max(lengths), PROMPTS_PER_ROW * float(np.mean(lengths)))
    for w in WIDTHS:
        if w >= need:
            return w
    if max(lengths) <= WIDTHS[-1]:
        return WIDTHS[-1]
    raise FlanJaxError(f"rank classification: a prompt of {max(lengths)} tokens exceeds the widest packed "
                       f"row ({WIDTHS[-1]}); score it with method='rows'")


def pack_first_fit(sizes: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of `sizes` packed first-fit decreasing into bins of `capacity`.

    Example: sizes [5, 3, 4, 2], capacity 8 -> [[0, 1], [2, 3]] (5 + 3, then 4 + 2)."""
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        for b, r in enumerate(room):
            if sizes[i] <= r:
                bins[b].append(i)
                room[b] -= sizes[i]
                break
        else:
            bins.append([i])
            room.append(capacity - sizes[i])
    return bins


def option_rows_of(option_lengths: Sequence[Sequence[int]], width: int) -> list[list[tuple[int, int]]]:
    """Options of the prompts of one cache row placed in option rows of `width` positions, at
    most one option of each prompt per row (longest first, first fit).

    option_lengths[p][j]: positions of option j of prompt p. Returns rows of (p, j).
    Example: [[2, 3], [2]], width 4 -> [[(0, 1)], [(0, 0), (1, 0)]]."""
    items = sorted(((n, p, j) for p, lens in enumerate(option_lengths) for j, n in enumerate(lens)),
                   key=lambda x: (-x[0], x[1], x[2]))
    rows: list[list[tuple[int, int]]] = []
    room: list[int] = []
    used: list[set[int]] = []
    for n, p, j in items:
        for r in range(len(rows)):
            if n <= room[r] and p not in used[r]:
                break
        else:
            rows.append([]), room.append(width), used.append(set())
            r = len(rows) - 1
        rows[r].append((p, j))
        room[r] -= n
        used[r].add(p)
    return rows


def option_width(parts: Sequence[Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]],
                 bins: Sequence[Sequence[int]]) -> int:
    """One width (a power of two >= MIN_OPTION_WIDTH) for every option row of an evaluation: at least
    the longest option and the mean, over cache rows, of their option positions divided by the
    most options of one of their prompts (the fewest option rows a cache row can need), so
    option rows come out mostly full. Example: 6 prompts x 3 options of 4.5 positions -> 27
    -> 32."""
    longest = max(t.size for ex in parts for _, t, _ in ex)
    per_row = [sum(t.size for e in b for _, t, _ in parts[e]) / max(len(parts[e]) for e in b) for b in bins]
    return max(MIN_OPTION_WIDTH, _pow2(max(longest, int(np.ceil(np.mean(per_row))))))


def build_calls(parts: Sequence[Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]],
                segment_ids: Sequence[Sequence[int]], bos_id: int,
                tokens_per_call: int = TOKENS_PER_CALL) -> list[Call]:
    """The calls scoring every option (module docstring layout).

    parts[e]: per option of example e, `split_segment`'s (prompt ids, option ids, weights) (the
    prompt is the same for all of them); segment_ids[e][j]: the caller's index of that option.
    """
    lengths = [int(ex[0][0].size) for ex in parts]  # prefill holds BOS + all but the last input
    width = prompt_width(lengths)
    bins = pack_first_fit(lengths, width)
    t = option_width(parts, bins)
    per_call = max(1, tokens_per_call // width)
    calls = []
    for start in range(0, len(bins), per_call):
        chunk = bins[start:start + per_call]
        calls.append(_call(parts, segment_ids, chunk, min(per_call, _pow2(len(chunk))), width, t, bos_id))
    return calls


def _call(parts, segment_ids, chunk, rows, width, t, bos_id) -> Call:
    layouts = [option_rows_of([[o.size for _, o, _ in parts[e]] for e in b], t) for b in chunk]
    num_option_rows = sum(len(x) for x in layouts)
    o = rows * -(-num_option_rows // rows)
    a = {name: np.zeros((rows, width), np.int32) for name in ("prompt_tokens", "prompt_positions", "prompt_segments")}
    a.update({name: np.zeros((o, t), np.int32) for name in ("option_tokens", "option_positions", "option_segments")})
    a["option_owner"] = np.zeros(o, np.int32)
    index, targets, seg_of, weight_of = [], [], [], []
    r_opt = 0
    for r, (b, layout) in enumerate(zip(chunk, layouts)):
        starts, at = [], 0
        for s, e in enumerate(b, start=1):
            full = np.concatenate([[bos_id], parts[e][0][0]]).astype(np.int32)  # [BOS, inputs...]
            n = full.size - 1
            a["prompt_tokens"][r, at:at + n] = full[:n]
            a["prompt_segments"][r, at:at + n] = s
            a["prompt_positions"][r, at:at + n] = np.arange(n)
            starts.append(full[n])
            at += n
        for placed in layout:
            a["option_owner"][r_opt] = r
            col = 0
            for p, j in placed:
                e = b[p]
                _, option, weights = parts[e][j]
                k, n = option.size, parts[e][0][0].size
                if k == 0:  # nothing to score (no weighted token): log-likelihood 0, 0 tokens
                    continue
                a["option_tokens"][r_opt, col:col + k] = np.concatenate([[starts[p]], option[:-1]])
                a["option_segments"][r_opt, col:col + k] = p + 1
                a["option_positions"][r_opt, col:col + k] = n + np.arange(k)
                scored = np.nonzero(weights > 0)[0]
                index.extend(r_opt * t + col + scored)
                targets.extend(option[scored])
                seg_of.extend([segment_ids[e][j]] * scored.size)
                weight_of.extend(weights[scored])
                col += k
            r_opt += 1
    num = len(index)
    n_max = max(HEAD_CHUNK, -(-o * t // HEAD_CHUNK) * HEAD_CHUNK)
    a["score_index"] = np.zeros(n_max, np.int32)
    a["score_targets"] = np.zeros(n_max, np.int32)
    a["score_index"][:num] = index
    a["score_targets"][:num] = targets
    a["num_scored"] = np.asarray(num, np.int32)
    return Call(a, np.asarray(seg_of, np.int64), np.asarray(weight_of, np.float32))


def score_fn(model: Any):
    """A jitted (params, Call.arrays) -> per scored position log p(target) [N_max] (cached per model)."""
    from flan_jax.models.decoder import init_cache  # noqa: PLC0415

    def run(params: Any, a: dict[str, jax.Array]) -> jax.Array:
        rows, width = a["prompt_tokens"].shape
        o, t = a["option_tokens"].shape
        cache = init_cache(model, rows, width + t)
        prompt = {"decoder_input_tokens": a["prompt_tokens"], "decoder_positions": a["prompt_positions"],
                  "decoder_segment_ids": a["prompt_segments"]}
        _, filled = model.apply({"params": params, "cache": cache}, prompt, decode=True, return_hidden=True,
                                mutable=["cache"])
        axes = prompt_sharing.batch_axes(model, rows, width + t)
        copies = jax.tree.map(lambda x, ax: x if ax is None else jnp.take(x, a["option_owner"], axis=ax),
                              filled["cache"], axes)
        option = {"decoder_input_tokens": a["option_tokens"], "decoder_positions": a["option_positions"],
                  "decoder_segment_ids": a["option_segments"]}
        (hidden, head), _ = model.apply({"params": params, "cache": copies}, option, decode=True,
                                        return_hidden=True, mutable=["cache"])
        flat = hidden.reshape(o * t, hidden.shape[-1])  # [O*T, D]

        def chunk(c: jax.Array, out: jax.Array) -> jax.Array:
            idx = jax.lax.dynamic_slice(a["score_index"], (c * HEAD_CHUNK,), (HEAD_CHUNK,))
            tgt = jax.lax.dynamic_slice(a["score_targets"], (c * HEAD_CHUNK,), (HEAD_CHUNK,))
            logits = head(jnp.take(flat, idx, axis=0))  # [C, V] float32
            logp = jnp.take_along_axis(logits, tgt[:, None], axis=-1)[:, 0] - jax.nn.logsumexp(logits, axis=-1)
            return jax.lax.dynamic_update_slice(out, logp, (c * HEAD_CHUNK,))

        chunks = (a["num_scored"] + HEAD_CHUNK - 1) // HEAD_CHUNK
        return jax.lax.fori_loop(0, chunks, chunk, jnp.zeros(a["score_index"].shape, jnp.float32))

    return scoring.jitted_per_model(model, "packed", lambda: run)


def score_segments(model: Any, params: Any, segments: Sequence[features.Segment], owner: np.ndarray,
                   bos_id: int, tokens_per_call: int = TOKENS_PER_CALL) -> tuple[np.ndarray, np.ndarray]:
    """(log-likelihood, scored tokens) per segment, in `segments` order; the same contract as
    `prompt_sharing.score_segments` (segments from `rank_classification.option_rows`, owner[j]
    the example of segment j, every segment of an example with the same prompt)."""
    by_example: dict[int, list[int]] = {}
    for j, i in enumerate(owner):
        by_example.setdefault(int(i), []).append(j)
    examples = list(by_example)
    parts = [[split_segment(segments[j]) for j in by_example[i]] for i in examples]
    ids = [by_example[i] for i in examples]
    ll = np.zeros(len(segments), np.float32)
    n = np.zeros(len(segments), np.float32)
    fn = score_fn(model)
    pending: list[tuple[Call, jax.Array]] = []

    def read_oldest() -> None:
        call, logp = pending.pop(0)
        got = np.asarray(logp)[: call.score_segment.size]
        np.add.at(ll, call.score_segment, got * call.score_weight)
        np.add.at(n, call.score_segment, call.score_weight)

    # The next call is dispatched while the previous one computes, but at most IN_FLIGHT calls are
    # outstanding: dispatching all of MMLU validation's ~100 calls at once held their buffers
    # together and reached 24 GB in a minute (killed).
    for call in build_calls(parts, ids, bos_id, tokens_per_call):
        pending.append((call, fn(params, call.arrays)))
        if len(pending) > IN_FLIGHT:
            read_oldest()
    while pending:
        read_oldest()
    return ll, n
