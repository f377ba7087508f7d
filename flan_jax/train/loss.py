"""Masked token cross-entropy over named batch fields: returns SUMS, never means.

The loss returns the sum of per-token losses times the loss weights plus an aux dict of sums
(target-token count, correct tokens, z-loss, the normalizer). The train step adds these sums over
every micro-batch and divides once by the global normalizer, so k accumulated micro-batches give
exactly the gradient of one k-times-larger batch.

Worked example (vocab 3, one row, the last position is padding):

    logits  [[[0, 0, 0], [2, 0, 0], [0, 0, 0]]]      -> log-softmax of row 0 = log(1/3) each
    targets [[1, 0, 0]]        weights [[1, 1, 0]]
    per-token loss = [log 3, log(1 + 2 e^-2), log 3] -> weighted sum = log 3 + log(1 + 2 e^-2)
    aux = {"weight_sum": 2, "correct": 1, "z_loss": 0, "normalizer": 2}

Position 2 has weight 0: it adds nothing to the loss and receives zero gradient. The argmax of
position 0 is ambiguous (all equal; argmax picks 0 != 1), position 1 is correct (argmax 0 == 0).

`head_cross_entropy_loss(hidden, head, batch, capacity=...)` returns the same sums from the
final hidden states and the model's `OutputHead`, computing the output projection only at the
positions with loss (the train step's default; see its docstring and docs/training.md).

`normalization="sequences"` (t5x's AVERAGE_PER_SEQUENCE): each packed segment's weights are
divided by that segment's target count, and the normalizer counts segments instead of tokens, so
every example counts equally whatever its length.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import jax
import jax.numpy as jnp

from flan_jax.errors import FlanJaxError
from flan_jax.models import layers

Normalization = Literal["tokens", "sequences"]
_NORMALIZATIONS = ("tokens", "sequences")


def _smoothed_constants(vocab_size: int, label_smoothing: Any) -> tuple[Any, Any, jax.Array]:
    """Soft-target weights (on, off) and the entropy of the soft target, subtracted so a perfect
    prediction of the soft target has loss 0: t5x/losses.py `compute_weighted_cross_entropy`'s
    `normalizing_constant` = -(on log on + (V - 1) off log(off + 1e-20)), on = 1 - s,
    off = s / (V - 1). Jax arithmetic throughout, so `label_smoothing` may be traced (jit).

    Worked example: V = 5, s = 0.1 -> on 0.9, off 0.025, entropy 0.463712; all-zero logits
    then give log 5 - 0.463712 = 1.145726 per token.
    """
    on = 1.0 - label_smoothing
    off = label_smoothing / max(vocab_size - 1, 1)
    entropy = -(jax.scipy.special.xlogy(on, on) + (vocab_size - 1) * off * jnp.log(off + 1e-20))
    return on, off, jnp.asarray(entropy, jnp.float32)


@jax.custom_vjp
def _token_xent(logits: jax.Array, targets: jax.Array, z_loss: jax.Array,
                label_smoothing: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-token (cross-entropy + z-loss, z-loss part) for f32 logits [..., V]."""
    out, _ = _token_xent_fwd(logits, targets, z_loss, label_smoothing)
    return out


def _token_xent_fwd(logits, targets, z_loss, label_smoothing):
    vocab = logits.shape[-1]
    # [..., 1] -> logsumexp; the backward only needs logits and this (not a saved softmax).
    lse = jax.nn.logsumexp(logits, axis=-1)
    target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    on, off, entropy = _smoothed_constants(vocab, label_smoothing)
    # sum_v soft_v * (lse - logit_v) = lse - (on - off) * logit_t - off * sum_v logit_v
    xent = lse - (on - off) * target_logit - off * jnp.sum(logits, axis=-1)
    z = z_loss * lse * lse
    return (xent - entropy + z, z), (logits, targets, lse, z_loss, label_smoothing)


def _token_xent_bwd(res, cotangents):
    logits, targets, lse, z_loss, label_smoothing = res
    g_total, g_z = cotangents
    vocab = logits.shape[-1]
    on = 1.0 - label_smoothing
    off = label_smoothing / max(vocab - 1, 1)
    probs = jnp.exp(logits - lse[..., None])
    # d(lse)/dlogits = probs; d(z lse^2) = 2 z lse probs; soft target = off + (on - off) * onehot.
    scale = g_total * (1.0 + 2.0 * z_loss * lse) + g_z * 2.0 * z_loss * lse
    onehot = jax.nn.one_hot(targets, vocab, dtype=logits.dtype)
    grad = scale[..., None] * probs - g_total[..., None] * (off + (on - off) * onehot)
    return grad, None, None, None


_token_xent.defvjp(_token_xent_fwd, _token_xent_bwd)


def _reference_token_xent(logits, targets, z_loss, label_smoothing):
    """Plain autodiff version (kept for the tests and the benchmark)."""
    vocab = logits.shape[-1]
    on, off, entropy = _smoothed_constants(vocab, label_smoothing)
    soft = off + (on - off) * jax.nn.one_hot(targets, vocab, dtype=logits.dtype)
    lse = jax.nn.logsumexp(logits, axis=-1)
    xent = -jnp.sum(soft * (logits - lse[..., None]), axis=-1) - entropy
    z = z_loss * lse * lse
    return xent + z, z


def segment_weights_per_sequence(weights: jax.Array, segment_ids: jax.Array | None) -> jax.Array:
    """Divide each segment's weights by that segment's weight sum (rows count as one segment
    when `segment_ids` is None).

    Example: weights [[1, 1, 1, 1, 0]], segments [[1, 1, 2, 2, 0]] with targets on all of
    segment 1 but only one token of segment 2 (weights [[1, 1, 0, 1, 0]]) ->
    [[0.5, 0.5, 0, 1, 0]].
    """
    if segment_ids is None:
        row = jnp.sum(weights, axis=-1, keepdims=True)
        return weights / jnp.maximum(row, 1e-9)
    # [B, L, L] same-segment matrix is fine for the short packed lengths used here.
    same = (segment_ids[..., :, None] == segment_ids[..., None, :]) & (segment_ids[..., None, :] > 0)
    per_token_total = jnp.einsum("bij,bj->bi", same.astype(weights.dtype), weights)
    return jnp.where(weights > 0, weights / jnp.maximum(per_token_total, 1e-9), 0.0)


def _checked_fields(batch: dict[str, jax.Array], targets_field: str, weights_field: str,
                    normalization: str) -> tuple[jax.Array, jax.Array]:
    """(targets int32 [B, L], weights float32 [B, L]) after checking the options and fields."""
    if normalization not in _NORMALIZATIONS:
        raise FlanJaxError(f"loss normalization {normalization!r}: expected one of {_NORMALIZATIONS}")
    for field in (targets_field, weights_field):
        if field not in batch:
            raise FlanJaxError(f"batch field {field!r} missing (have {sorted(batch)})")
    return batch[targets_field].astype(jnp.int32), batch[weights_field].astype(jnp.float32)


def _loss_weights(weights: jax.Array, segment_ids: jax.Array | None,
                  normalization: str) -> tuple[jax.Array, jax.Array]:
    """(per-position loss weights [B, L], normalizer): the weights themselves and their sum, or
    with "sequences" each segment's weights divided by its weight sum and the segment count."""
    if normalization == "sequences":
        loss_weights = segment_weights_per_sequence(weights, segment_ids)
        return loss_weights, jnp.sum(loss_weights)  # = number of segments that have targets
    return weights, jnp.sum(weights)


def _masked_sums(logits: jax.Array, targets: jax.Array, mask: jax.Array, loss_weights: jax.Array,
                 z_loss: float, label_smoothing: float, custom_vjp: bool) -> tuple[jax.Array, ...]:
    """(loss sum, z-loss sum, correct count) over the positions where `mask` is True.

    logits [..., V] (cast to float32); targets, mask, loss_weights [...].
    """
    logits = logits.astype(jnp.float32)
    if custom_vjp:
        per_token, per_token_z = _token_xent(
            logits, targets, jnp.float32(z_loss), jnp.float32(label_smoothing))
    else:
        per_token, per_token_z = _reference_token_xent(logits, targets, z_loss, label_smoothing)
    # jnp.where (not only the multiply) so a masked inf/nan logit cannot leak into the sum.
    loss_sum = jnp.sum(jnp.where(mask, per_token * loss_weights, 0.0))
    z_sum = jnp.sum(jnp.where(mask, per_token_z * loss_weights, 0.0))
    correct = jnp.sum(jnp.where(mask, jnp.argmax(logits, axis=-1) == targets, False))
    return loss_sum, z_sum, correct.astype(jnp.float32)


def cross_entropy_loss(
    logits: jax.Array,
    batch: dict[str, jax.Array],
    *,
    targets_field: str = "decoder_target_tokens",
    weights_field: str = "decoder_loss_weights",
    segment_field: str = "decoder_segment_ids",
    z_loss: float = 0.0,
    label_smoothing: float = 0.0,
    normalization: Normalization = "tokens",
    custom_vjp: bool = False,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Sum of weighted per-token losses over the batch and an aux dict of sums.

    logits: [batch, length, vocab] (any float dtype; computed in float32).
    Returns (loss_sum, {"weight_sum", "correct", "z_loss", "normalizer"}); divide loss_sum by the
    normalizer summed over ALL micro-batches (and devices) of the step.

    `custom_vjp=True` uses a hand-written backward that keeps only logits and logsumexp. Measured
    on the 2-core CPU (head 512x32000, 4x128 tokens, forward+backward): 0.48 s vs 0.49 s for
    plain autodiff (min of 15; medians equal) -- XLA already fuses the autodiff backward, so the
    default stays plain autodiff and the custom one is an option (tested equal).
    """
    targets, weights = _checked_fields(batch, targets_field, weights_field, normalization)
    loss_weights, normalizer = _loss_weights(weights, batch.get(segment_field), normalization)
    loss_sum, z_sum, correct = _masked_sums(logits, targets, weights > 0, loss_weights, z_loss,
                                            label_smoothing, custom_vjp)
    aux = {"weight_sum": jnp.sum(weights), "correct": correct, "z_loss": z_sum, "normalizer": normalizer}
    return loss_sum, aux


DEFAULT_HEAD_CAPACITY = 0.25  # of the positions of each device's micro-batch; docs/training.md


def head_chunk_size(num_positions: int, capacity: float) -> int:
    """Positions per head chunk: ceil(capacity * N) rounded up to a multiple of 8, at most N.

    Example: N = 4096 (8 rows of 512 on one device), capacity 0.25 -> 1024; N = 24, 0.25 -> 8.
    """
    if not 0.0 < capacity <= 1.0:
        raise FlanJaxError(f"loss head_capacity {capacity!r}: expected a fraction in (0, 1] "
                           "(or None for the full-logits path)")
    return min(num_positions, -(-math.ceil(capacity * num_positions) // 8) * 8)


def head_cross_entropy_loss(
    hidden: jax.Array,
    head: layers.OutputHead,
    batch: dict[str, jax.Array],
    *,
    capacity: float = DEFAULT_HEAD_CAPACITY,
    groups: int = 1,
    targets_field: str = "decoder_target_tokens",
    weights_field: str = "decoder_loss_weights",
    segment_field: str = "decoder_segment_ids",
    z_loss: float = 0.0,
    label_smoothing: float = 0.0,
    normalization: Normalization = "tokens",
    custom_vjp: bool = False,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """`cross_entropy_loss(head(hidden), batch, ...)` with the output projection and the
    cross-entropy computed only at the positions that carry loss (weight > 0): same values and
    the same gradients (up to float summation order), without the [B, L, V] logits.

    hidden [B, L, D] (the final hidden states), head: the model's `OutputHead`.

    How (all shapes static under jit; no host sync): the B x L positions are cut into `groups`
    equal groups of N = B L / groups consecutive positions (groups = the batch shards, so each
    device sorts and gathers only its own rows); a stable argsort puts each group's loss
    positions first (`layers.loss_positions_first`). The first C = `head_chunk_size(N,
    capacity)` of them are gathered and go through the head and the loss as usual. Loss
    positions beyond C are never dropped: they go through further chunks of C in a loop over
    only the chunks that hold one (`_overflow_sums`: `lax.while_loop` in a `custom_vjp`, each
    chunk's logits recomputed in the backward pass), so their memory is one chunk's logits, and
    a `lax.cond` skips the loop in the common case (all loss positions in the first chunk).
    capacity 1.0 computes every position in one chunk without sorting (the full head).

    Worked example (one group of N = 8 positions and, to keep it short, chunks of C = 2; real
    chunks are multiples of 8):
        weights [[0, 0, 1, 1, 0, 0, 1, 0]]  -> order [[2, 3, 6, 0, 1, 4, 5, 7]]
        chunk 0 = positions [2, 3] (always computed), chunk 1 = [6, 0] (computed; only 6
        counts), chunks 2, 3 = [1, 4], [5, 7] (skipped: no loss position).

    capacity: fraction in (0, 1] of each group's positions per chunk (`head_chunk_size`);
    FlanJaxError otherwise. groups: 1, or the number of batch shards (must divide B, else 1).
    """
    targets, weights = _checked_fields(batch, targets_field, weights_field, normalization)
    loss_weights, normalizer = _loss_weights(weights, batch.get(segment_field), normalization)
    rows, length, emb = hidden.shape
    groups = groups if groups >= 1 and rows % groups == 0 else 1
    n = rows * length // groups
    chunk = head_chunk_size(n, capacity)
    # [B, L, ...] -> [G, N, ...]: consecutive rows, so a batch-sharded array splits along G.
    h = layers.with_logical_constraint(hidden.reshape(groups, n, emb), ("batch", "length", "embed"))
    t, w, m = (x.reshape(groups, n) for x in (targets, loss_weights, weights > 0))

    def chunk_sums(h, kernel, t, w, index, valid):
        def pick(x):
            return x if index is None else layers.take_positions(x, index)

        logits = dataclasses.replace(head, kernel=kernel)(pick(h))  # [G, C, V] float32
        logits = layers.with_logical_constraint(logits, ("batch", "length", "vocab"))
        return _masked_sums(logits, pick(t), valid, pick(w), z_loss, label_smoothing, custom_vjp)

    if chunk >= n:
        sums = chunk_sums(h, head.kernel, t, w, None, m)
    else:
        num_chunks = -(-n // chunk)
        pad = ((0, 0), (0, num_chunks * chunk - n))
        order = layers.loss_positions_first(m)
        valid = jnp.pad(jnp.take_along_axis(m, order, axis=1), pad)  # padding slots: False
        order = jnp.pad(order, pad)

        def first_chunk():
            return chunk_sums(h, head.kernel, t, w, order[:, :chunk], valid[:, :chunk])

        if num_chunks == 1:
            sums = first_chunk()
        else:
            # One cond chooses "first chunk" or "first chunk + overflow chunks", so the common case
            # has exactly one kernel cotangent: a cond around the overflow alone gives a zero
            # [V, D] cotangent in the backward pass, and its add to the first chunk's was ~5% of a
            # Gemma 3 270M step's op time (docs/benchmarks.md).
            def with_overflow():
                overflow = _overflow_sums(chunk_sums, chunk, h, head.kernel, t, w, order[:, chunk:],
                                          valid[:, chunk:])
                return jax.tree.map(jnp.add, first_chunk(), overflow)

            sums = jax.lax.cond(jnp.any(valid[:, chunk:]), with_overflow, first_chunk)
    loss_sum, z_sum, correct = sums
    aux = {"weight_sum": jnp.sum(weights), "correct": correct, "z_loss": z_sum, "normalizer": normalizer}
    return loss_sum, aux


def _overflow_sums(chunk_sums, chunk, h, kernel, t, w, order, valid):
    """Sums over the chunks after the first, looping (`lax.while_loop`) over only the chunks
    that hold a loss position, forward and backward: a `custom_vjp` whose backward recomputes
    each such chunk's logits (memory: one chunk's) and adds its kernel cotangent. A chunk
    without loss positions costs nothing: the autodiff of a scan over all chunks added a
    vocabulary-sized zero cotangent for each skipped one (docs/benchmarks.md).

    order, valid: [G, K * C] (the positions after the first chunk, loss positions first in each
    group, so the chunks holding one are the first `needed` of K). t, w: [G, N] targets and
    loss weights (no cotangent: only h and the kernel are differentiated).
    """
    groups = order.shape[0]
    # [G, K * C] -> [K, G, C]; passed to the custom_vjp function, which must not close over them
    order = jnp.swapaxes(order.reshape(groups, -1, chunk), 0, 1)
    valid = jnp.swapaxes(valid.reshape(groups, -1, chunk), 0, 1)

    def loop(body, init, valid):  # over the chunks holding a loss position: a prefix of the K
        return jax.lax.fori_loop(0, jnp.sum(jnp.any(valid, axis=(1, 2))), body, init)

    @jax.custom_vjp
    def sums(h, kernel, t, w, order, valid):
        def body(k, acc):
            return jax.tree.map(jnp.add, acc, chunk_sums(h, kernel, t, w, order[k], valid[k]))
        return loop(body, (jnp.zeros((), jnp.float32),) * 3, valid)

    def sums_fwd(h, kernel, t, w, order, valid):
        return sums(h, kernel, t, w, order, valid), (h, kernel, t, w, order, valid)

    def sums_bwd(res, g):
        h, kernel, t, w, order, valid = res
        g = (g[0], g[1], jnp.zeros_like(g[2]))  # `correct` has no gradient

        def body(k, acc):
            _, pullback = jax.vjp(lambda h, kernel: chunk_sums(h, kernel, t, w, order[k], valid[k]), h, kernel)
            return jax.tree.map(jnp.add, acc, pullback(g))

        dh, dkernel = loop(body, (jnp.zeros_like(h), jnp.zeros_like(kernel)), valid)
        return dh, dkernel, None, None, None, None

    sums.defvjp(sums_fwd, sums_bwd)
    return sums(h, kernel, t, w, order, valid)
