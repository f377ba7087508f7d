"""The search loops behind decoding.py's `decode_fn`: greedy / temperature / top-k / top-p
sampling and beam search, each one `lax.while_loop` over a stepper's two calls
(`start(params, prompt)`, `step(params, tokens [B], state)`; decoding.py's module doc).

    _sample_loop(st, params, prompt, rng, cfg) -> tokens [B, T] int32, log p [B] float32, finished [B] bool
    _beam_loop(st, params, prompt, cfg)        -> best tokens [B, T], penalised log p [B], finished [B]

T is `cfg.max_decode_length`; a row stops at `cfg.eos_id` and is padded with 0 after it.
`filter_logits` and `length_penalty` are the sampling filter and beam search's length penalty;
`row_axis` finds the row axis of a cache leaf (prompt_sharing.py uses it too).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

if TYPE_CHECKING:
    from flan_jax.eval.decoding import DecodeConfig

NEG_INF = -1.0e9  # finite stand-in for -inf: keeps arithmetic NaN-free


def length_penalty(length: jax.Array | int, alpha: float) -> jax.Array:
    """((5 + length) / 6) ** alpha (Wu et al. 2016, as in T5's beam search)."""
    return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


# ----------------------------------------------------------------------------- sampling / greedy


def filter_logits(logits: jax.Array, top_k: int = 0, top_p: float = 1.0) -> jax.Array:
    """Logits [B, V] with everything outside the top-k and the top-p nucleus set to NEG_INF.

    The nucleus is the smallest set of most likely tokens whose probability reaches top_p
    (the most likely token is always kept). Example, probs [0.5, 0.3, 0.15, 0.05], top_p 0.7
    -> keeps tokens 0 and 1.
    """
    if top_k:
        kth = jax.lax.top_k(logits, top_k)[0][:, -1:]
        logits = jnp.where(logits < kth, NEG_INF, logits)
    if top_p < 1.0:
        sorted_logits = jnp.sort(logits, axis=-1)[:, ::-1]
        probs = jax.nn.softmax(sorted_logits, axis=-1)
        before = jnp.cumsum(probs, axis=-1) - probs  # mass of the more likely tokens
        keep = before < top_p
        threshold = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), axis=-1, keepdims=True)
        logits = jnp.where(logits < threshold, NEG_INF, logits)
    return logits


def _choose(logits: jax.Array, rng: jax.Array, cfg: DecodeConfig) -> jax.Array:
    if cfg.method == "greedy" or cfg.temperature == 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = filter_logits(logits / cfg.temperature, cfg.top_k, cfg.top_p)
    return jax.random.categorical(rng, logits, axis=-1).astype(jnp.int32)


def _sample_loop(st: Any, params: Any, prompt: Mapping[str, jax.Array], rng: jax.Array,
                 cfg: DecodeConfig) -> tuple[jax.Array, jax.Array, jax.Array]:
    logits, state = st.start(params, prompt)
    b, t = logits.shape[0], cfg.max_decode_length
    out = jnp.zeros((b, t), jnp.int32)
    done = jnp.zeros(b, bool)
    score = jnp.zeros(b, jnp.float32)

    def cond(carry):
        i, _, _, _, done, _, _ = carry
        return (i < t) & ~jnp.all(done)

    def body(carry):
        i, logits, state, out, done, score, rng = carry
        rng, sub = jax.random.split(rng)
        token = jnp.where(done, 0, _choose(logits, sub, cfg))
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits), token[:, None], axis=-1)[:, 0]
        score = score + jnp.where(done, 0.0, logp)
        out = out.at[:, i].set(token)
        done = done | (token == cfg.eos_id)
        logits, state = st.step(params, token, state)
        return i + 1, logits, state, out, done, score, rng

    carry = (jnp.zeros((), jnp.int32), logits, state, out, done, score, rng)
    _, _, _, out, done, score, _ = jax.lax.while_loop(cond, body, carry)
    return out, score, done


# ----------------------------------------------------------------------------- beam search


def _batch_axes(st: Any, params: Any, prompt: Mapping[str, jax.Array], state: Any) -> Any:
    """Per state leaf, the axis that indexes rows (found by comparing shapes at two batch
    sizes, so the loop works with either model's cache layout); None for per-batch scalars."""
    bigger = {k: jnp.concatenate([v, v[:1]], axis=0) for k, v in prompt.items()}
    shapes = jax.eval_shape(st.start, params, bigger)[1]
    return jax.tree.map(row_axis, state, shapes)


def row_axis(small: Any, big: Any) -> int | None:
    """The first axis where two shapes of one leaf (at batch sizes b and b + 1) differ: the
    axis indexing rows; None if they do not differ (a per-batch scalar)."""
    diff = [i for i, (a, c) in enumerate(zip(small.shape, big.shape)) if a != c]
    return diff[0] if diff else None


def _beam_loop(st: Any, params: Any, prompt: Mapping[str, jax.Array], cfg: DecodeConfig
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
    k, t = cfg.beam_size, cfg.max_decode_length
    b = next(iter(prompt.values())).shape[0]
    flat_prompt = {name: jnp.repeat(v, k, axis=0) for name, v in prompt.items()}  # [B*K, ...]
    logits, state = st.start(params, flat_prompt)
    axes = _batch_axes(st, params, flat_prompt, state)
    v = logits.shape[-1]
    penalty = lambda n: length_penalty(n, cfg.alpha)  # noqa: E731

    alive_seq = jnp.zeros((b, k, t), jnp.int32)
    alive_lp = jnp.tile(jnp.asarray([0.0] + [NEG_INF] * (k - 1), jnp.float32), (b, 1))
    fin_seq = jnp.zeros((b, k, t), jnp.int32)
    fin_score = jnp.full((b, k), NEG_INF, jnp.float32)

    def gather_beams(x: jax.Array, index: jax.Array) -> jax.Array:  # x [B, N, ...], index [B, M]
        return jnp.take_along_axis(x, index.reshape(index.shape + (1,) * (x.ndim - 2)), axis=1)

    def cond(carry):
        i, _, _, _, alive_lp, _, fin_score = carry
        best_possible = alive_lp[:, 0] / penalty(t)
        return (i < t) & ~jnp.all(fin_score[:, -1] >= best_possible)

    def body(carry):
        i, logits, state, alive_seq, alive_lp, fin_seq, fin_score = carry
        logp = jax.nn.log_softmax(logits).reshape(b, k, v)
        candidates = (alive_lp[:, :, None] + logp).reshape(b, k * v)
        top_lp, top_index = jax.lax.top_k(candidates, 2 * k)  # [B, 2K]
        source, token = top_index // v, (top_index % v).astype(jnp.int32)
        seqs = gather_beams(alive_seq, source).at[:, :, i].set(token)
        is_eos = token == cfg.eos_id
        # finished: old ones plus EOS candidates ranked within the top K (as fairseq does, so
        # beam_size 1 is greedy search), best K by penalised score
        in_top_k = jnp.arange(2 * k)[None, :] < k
        new_fin = jnp.where(is_eos & in_top_k & (top_lp > NEG_INF / 2), top_lp / penalty(i + 1), NEG_INF)
        all_fin = jnp.concatenate([fin_score, new_fin], axis=1)
        fin_score, pick = jax.lax.top_k(all_fin, k)
        fin_seq = gather_beams(jnp.concatenate([fin_seq, seqs], axis=1), pick)
        # alive: best K candidates that did not end
        alive_lp, pick = jax.lax.top_k(jnp.where(is_eos, NEG_INF, top_lp), k)
        alive_seq = gather_beams(seqs, pick)
        rows = (jnp.arange(b)[:, None] * k + gather_beams(source, pick)).reshape(-1)  # [B*K]
        state = jax.tree.map(lambda x, a: x if a is None else jnp.take(x, rows, axis=a), state, axes)
        logits, state = st.step(params, gather_beams(token, pick).reshape(-1), state)
        return i + 1, logits, state, alive_seq, alive_lp, fin_seq, fin_score

    carry = (jnp.zeros((), jnp.int32), logits, state, alive_seq, alive_lp, fin_seq, fin_score)
    _, _, _, alive_seq, alive_lp, fin_seq, fin_score = jax.lax.while_loop(cond, body, carry)
    # Examples with no finished hypothesis return their best live one.
    any_finished = fin_score[:, 0] > NEG_INF / 2
    best = jnp.where(any_finished[:, None], fin_seq[:, 0], alive_seq[:, 0])
    score = jnp.where(any_finished, fin_score[:, 0], alive_lp[:, 0] / penalty(t))
    return best, score, any_finished
