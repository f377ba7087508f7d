"""Rank classification from one prompt pass: each prompt runs once, its options read its cache.

Scoring one row per (example, option) runs an example's prompt once per option, and the prompt
is most of the row (flan-nl: prompts of 21-61 Gemma tokens, options of 1-6). For a causal
decoder (FEATURE_FORMAT "decoder") the options can share the prompt's work exactly: the prompt
goes through the model's decode path once, filling its key/value cache, and every option is
then a short continuation of that cache (the cache row repeated once per option). The
log-likelihoods equal the one-row-per-option scores (`rank_classification.option_rows`) up to
float32 noise, because every option token sees the same keys and values at the same positions.

Worked example (BOS 2, EOS 1): inputs [7, 8, 5], options yes -> [31], no -> [40, 41]

    one row per option    [2, 7, 8, 5, 31]      scored at the last two positions (targets 31, 1)
                          [2, 7, 8, 5, 40, 41]  scored at the last three (targets 40, 41, 1)
    here, prompt pass     tokens [2, 7, 8]      positions [0, 1, 2]  (one cache row)
          option rows     tokens [5, 31, 0]     targets [31, 1, 0]   weights [1, 1, 0]
                          tokens [5, 40, 41]    targets [40, 41, 1]  weights [1, 1, 1]
                          positions [3, 4, 5], reading the cache row of the prompt
    The last input token starts the option rows: its output predicts the first option token.

Shapes, to keep jit compilations few: examples are sorted by prompt length and taken
`batch_size // options` at a time (so each call scores about `batch_size` option rows); the
prompt width is rounded up to a multiple of 32 and the option width to a power of two.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.data.features import converters as features
from flan_jax.eval import scoring

PROMPT_BUCKET = 32  # prompt widths are multiples of this (one compilation per multiple)


def supports(model: Any) -> bool:
    """Whether `model` can score options from a shared prompt (a causal decoder with `decode`)."""
    return getattr(model, "FEATURE_FORMAT", None) == "decoder" and hasattr(model, "decode")


def split_segment(seg: features.Segment) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prompt ids, option ids, option weights) of a decoder-format segment (inputs then targets,
    weight 0 on the inputs). Example: decoder [7, 8, 5, 31, 1], weights [0, 0, 0, 1, 1] ->
    ([7, 8, 5], [31, 1], [1, 1])."""
    first = int(np.argmax(seg.weights > 0)) if seg.weights.any() else seg.decoder.size
    return seg.decoder[:first], seg.decoder[first:], seg.weights[first:]


def _round_up(n: int, multiple: int) -> int:
    return max(multiple, -(-n // multiple) * multiple)


def next_pow2(n: int) -> int:
    """The smallest power of two >= n (1 for n <= 1). Example: 5 -> 8, 8 -> 8."""
    return 1 << max(0, int(n) - 1).bit_length()


def call_arrays(prompts: Sequence[np.ndarray], options: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]],
                bos_id: int, rows: int, examples: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of one scoring call (module docstring layout).

    prompts: E prompt id arrays (no BOS); options[e]: (target ids, weights) per option of
    example e; rows: option rows per call (R >= the number of options, filler rows weight 0);
    examples: prompt rows per call (E >= len(prompts), filler rows empty; default len(prompts)).
    Returns prompt_tokens/prompt_segments [E, P] (P a multiple of PROMPT_BUCKET), owner [R]
    (the prompt row each option row reads), option_tokens/positions/targets/weights [R, T].
    """
    e = len(prompts) if examples is None else examples
    lengths = np.array([p.size for p in prompts], np.int64)  # the prompt pass holds BOS + all but the last
    width = _round_up(int(lengths.max(initial=1)), PROMPT_BUCKET)
    option_width = next_pow2(max((t.size for opts in options for t, _ in opts), default=1))
    arrays = {
        "prompt_tokens": np.zeros((e, width), np.int32),
        "prompt_segments": np.zeros((e, width), np.int32),
        "owner": np.zeros(rows, np.int32),
        "option_tokens": np.zeros((rows, option_width), np.int32),
        "option_positions": np.zeros((rows, option_width), np.int32),
        "option_targets": np.zeros((rows, option_width), np.int32),
        "option_weights": np.zeros((rows, option_width), np.int32),
    }
    r = 0
    for i, (prompt, opts) in enumerate(zip(prompts, options)):
        full = np.concatenate([[bos_id], prompt]).astype(np.int32)  # [BOS, inputs...]
        n = full.size - 1  # prompt pass: [BOS, inputs[:-1]] at positions 0..n-1
        arrays["prompt_tokens"][i, :n] = full[:n]
        arrays["prompt_segments"][i, :n] = 1
        for targets, weights in opts:
            k = targets.size
            arrays["owner"][r] = i
            arrays["option_tokens"][r, :k] = np.concatenate([full[n:], targets[:-1]])
            arrays["option_positions"][r, :] = n + np.arange(option_width)
            arrays["option_targets"][r, :k] = targets
            arrays["option_weights"][r, :k] = weights
            r += 1
    return arrays


def batch_axes(model: Any, examples: int, width: int) -> Any:
    """Per cache leaf, the axis indexing the rows (shapes at two batch sizes compared)."""
    from flan_jax.eval.decode_search import row_axis  # noqa: PLC0415
    from flan_jax.models.decoder import init_cache  # noqa: PLC0415

    def shapes(b: int) -> Any:
        return jax.eval_shape(lambda: init_cache(model, b, width))

    return jax.tree.map(row_axis, shapes(examples), shapes(examples + 1))


def score_fn(model: Any):
    """A jitted (params, call_arrays) -> (log-likelihood [R], scored tokens [R]) (cached per model)."""
    from flan_jax.models.decoder import init_cache  # noqa: PLC0415

    def score(params: Any, a: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        e, p = a["prompt_tokens"].shape
        t = a["option_tokens"].shape[1]
        cache = init_cache(model, e, p + t)
        positions = jnp.broadcast_to(jnp.arange(p, dtype=jnp.int32), (e, p))
        _, variables = model.apply({"params": params, "cache": cache}, a["prompt_tokens"], positions,
                                   a["prompt_segments"], method="decode", mutable=["cache"])
        axes = batch_axes(model, e, p + t)
        rows = jax.tree.map(lambda x, ax: x if ax is None else jnp.take(x, a["owner"], axis=ax),
                            variables["cache"], axes)
        segments = (a["option_weights"] > 0) | (jnp.arange(t)[None, :] == 0)
        logits, _ = model.apply({"params": params, "cache": rows}, a["option_tokens"], a["option_positions"],
                                segments.astype(jnp.int32), method="decode", mutable=["cache"])
        return scoring.weighted_log_likelihood(logits, a["option_targets"], a["option_weights"])

    return scoring.jitted_per_model(model, "prompt_sharing", lambda: score)


def score_segments(model: Any, params: Any, segments: Sequence[features.Segment], owner: np.ndarray,
                   bos_id: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(log-likelihood, scored tokens) per segment, in `segments` order.

    segments: decoder-format segments, one per (example, option), `owner[j]` the example of
    segment j (the output of `rank_classification.option_rows`); every segment of an example
    has the same prompt. batch_size: option rows per model call.
    """
    by_example: dict[int, list[int]] = {}
    for j, i in enumerate(owner):
        by_example.setdefault(int(i), []).append(j)
    parts = {i: [split_segment(segments[j]) for j in js] for i, js in by_example.items()}
    order = sorted(by_example, key=lambda i: (len(by_example[i]), parts[i][0][0].size))
    fn = score_fn(model)
    ll = np.zeros(len(segments), np.float32)
    n = np.zeros(len(segments), np.float32)
    start = 0
    while start < len(order):
        options = len(by_example[order[start]])
        per_call = max(1, batch_size // options)
        chunk = [i for i in order[start:start + per_call] if len(by_example[i]) == options]
        start += len(chunk)
        rows = per_call * options
        a = call_arrays([parts[i][0][0] for i in chunk], [[(t, w) for _, t, w in parts[i]] for i in chunk],
                        bos_id, rows, per_call)
        got_ll, got_n = fn(params, a)
        got_ll, got_n = np.asarray(got_ll), np.asarray(got_n)
        r = 0
        for i in chunk:
            for j in by_example[i]:
                ll[j], n[j] = got_ll[r], got_n[r]
                r += 1
    return ll, n
