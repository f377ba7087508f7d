"""Attention for both model families: packed-batch masks and softmax attention with a
hand-written backward.

Shape letters as in `layers.py`: B batch, L query length, S key length, H query heads,
K kv heads, Dh head dim. Logits and softmax are float32 whatever the compute dtype.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from flan_jax.models import block_attention

Array = jax.Array


def make_attention_mask(
    query_segment_ids: Array,
    key_segment_ids: Array,
    *,
    causal: bool,
    query_index: Array | None = None,
    key_index: Array | None = None,
    bidirectional_query: Array | None = None,
    bidirectional_key: Array | None = None,
) -> Array:
    """Boolean attention mask [B, 1, Lq, Lk] for packed (or padded) batches.

    A query may see a key when both are in the same segment and the key is not padding
    (segment id 0). With `causal`, additionally key_index <= query_index (indices default to
    0..L-1 along the array), except that pairs where both `bidirectional_query` and
    `bidirectional_key` are true (the prefix of a prefix LM, `decoder_causal_attention`) see
    each other in both directions.

    Worked example (one row, causal, prefix on the first two positions of segment 1):
        segment_ids       = [1, 1, 1, 2, 2, 0]
        causal_attention  = [1, 1, 0, 1, 0, 0]
        mask (query rows, key columns):
            q0: 1 1 0 0 0 0      <- q0 sees k1 because both are prefix
            q1: 1 1 0 0 0 0
            q2: 1 1 1 0 0 0
            q3: 0 0 0 1 0 0      <- segment 2 never sees segment 1
            q4: 0 0 0 1 1 0
            q5: 0 0 0 0 0 0      <- padding sees nothing
    """
    # [B, Lq, 1] == [B, 1, Lk] -> [B, Lq, Lk]
    mask = (query_segment_ids[:, :, None] == key_segment_ids[:, None, :]) & (
        key_segment_ids[:, None, :] != 0
    )
    if causal:
        lq, lk = query_segment_ids.shape[1], key_segment_ids.shape[1]
        qi = jnp.arange(lq)[None, :] if query_index is None else query_index
        ki = jnp.arange(lk)[None, :] if key_index is None else key_index
        if qi.ndim == 1:
            qi = qi[None, :]
        if ki.ndim == 1:
            ki = ki[None, :]
        allowed = ki[:, None, :] <= qi[:, :, None]
        if bidirectional_query is not None and bidirectional_key is not None:
            both_prefix = bidirectional_query.astype(bool)[:, :, None] & bidirectional_key.astype(bool)[:, None, :]
            allowed = allowed | both_prefix
        mask = mask & allowed
    return mask[:, None, :, :]


def branch_mask(branch_ids: Array) -> Array:
    """Boolean [B, 1, L, L] for tree rows (`decoder_branch_ids`): a query sees a key unless the key
    lies on another branch. Branch 0 is the trunk (a shared prompt); tokens of branch b > 0 see
    the trunk and branch b. AND it with the causal segment mask, whose array-index causality keeps
    the trunk from seeing the branches placed after it (eval/packed_scoring.py's rows).

    Worked example, one segment: a prompt of 2 tokens and two options of 2 and 1 tokens,
        branch_ids = [0, 0, 1, 1, 2]
        mask & causal (query rows, key columns):
            q0: 1 0 0 0 0
            q1: 1 1 0 0 0
            q2: 1 1 1 0 0      <- option 1 sees the prompt and itself
            q3: 1 1 1 1 0
            q4: 1 1 0 0 1      <- option 2 never sees option 1
    """
    key = branch_ids[:, None, :]
    return ((key == 0) | (key == branch_ids[:, :, None]))[:, None, :, :]


def batch_branch_ids(batch: Any, decode: bool) -> Array | None:
    """The batch's `decoder_branch_ids` (tree rows, `branch_mask`) as an array, or None without them.
    Raises ValueError with decode=True: a tree row is scored in one full pass, never from a cache."""
    if "decoder_branch_ids" not in batch:
        return None
    if decode:
        raise ValueError("decoder_branch_ids (tree rows) are for one full pass, not decode=True")
    return jnp.asarray(batch["decoder_branch_ids"])


def sliding_window_mask(query_positions: Array, key_positions: Array, window: int) -> Array:
    """Boolean [B, 1, Lq, Lk]: key_position > query_position - window (Gemma's local layers).

    AND it with a causal `make_attention_mask`: each query then sees itself and the window - 1
    keys before it in its segment (HF masking_utils.sliding_window_overlay). Positions, not
    array indices, so that it also holds in a decode cache whose rows had prompts of different
    lengths (right padding puts a row's generated tokens at slots beyond its positions).
    Worked example, positions [0, 1, 2, 3], window 2 (and causal):
            q0: 1 0 0 0
            q1: 1 1 0 0
            q2: 0 1 1 0
            q3: 0 0 1 1
    """
    # [B, Lq, 1] vs [B, 1, Lk]
    allowed = key_positions[:, None, :] > query_positions[:, :, None] - window
    return allowed[:, None, :, :]


def extend_kv_cache(module: Any, key: Array, value: Array, cache_index: Array) -> tuple[Array, Array]:
    """Writes key/value [B, T, K, Dh] into `module`'s "cache" collection at slot `cache_index`;
    returns the whole cache [B, S, K, Dh] (S = the length the cache was created with).

    Called from inside a flax module's method (decode mode). On the cache creation pass (no
    cache yet) the zero-filled variables are created with the input's shapes and the inputs
    are returned unchanged. Example: S = 6, cache_index 3, T = 1: slot 3 of cached_key becomes
    the new key and the 6 slots are returned.
    """
    initialized = module.has_variable("cache", "cached_key")
    cached_k = module.variable("cache", "cached_key", jnp.zeros, key.shape, key.dtype)
    cached_v = module.variable("cache", "cached_value", jnp.zeros, value.shape, value.dtype)
    if not initialized:  # cache creation pass: shapes only
        return key, value
    start = (0, cache_index, 0, 0)
    cached_k.value = jax.lax.dynamic_update_slice(cached_k.value, key.astype(cached_k.value.dtype), start)
    cached_v.value = jax.lax.dynamic_update_slice(cached_v.value, value.astype(cached_v.value.dtype), start)
    return cached_k.value, cached_v.value


def extend_segment_cache(
    module: Any, segment_ids: Array, prefix: Array | None = None, positions: Array | None = None
) -> tuple[Array, Array, Array] | tuple[Array, Array, Array, Array] | None:
    """Records the new keys' segment ids [B, T] (and prefix-LM flags) in `module`'s "cache".

    Returns (start index, key segment ids [B, S], key prefix flags [B, S]) for building the
    mask of the T new queries over the S cache slots: the queries sit at cache slots
    start .. start + T - 1; with `positions` [B, T] given (a sliding-window model) these are
    recorded too and the key positions [B, S] are returned as a fourth element. Returns None
    on the cache creation pass (variables created with S = the input's length).

    Example: a prompt of 4 with segment ids [1, 1, 1, 0], then one token: the second call
    returns start 4 and key segment ids [1, 1, 1, 0, 1, 0, ...].
    """
    initialized = module.has_variable("cache", "index")
    index = module.variable("cache", "index", lambda: jnp.zeros((), jnp.int32))
    key_segments = module.variable("cache", "key_segment_ids", jnp.zeros, segment_ids.shape, jnp.int32)
    key_prefix = module.variable("cache", "key_prefix", jnp.zeros, segment_ids.shape, jnp.bool_)
    key_positions = None
    if positions is not None:
        key_positions = module.variable("cache", "key_positions", jnp.zeros, segment_ids.shape, jnp.int32)
    if not initialized:
        return None
    start = index.value
    prefix = jnp.zeros(segment_ids.shape, jnp.bool_) if prefix is None else jnp.asarray(prefix).astype(bool)
    key_segments.value = jax.lax.dynamic_update_slice(key_segments.value, segment_ids.astype(jnp.int32), (0, start))
    key_prefix.value = jax.lax.dynamic_update_slice(key_prefix.value, prefix, (0, start))
    index.value = start + segment_ids.shape[1]
    if key_positions is None:
        return start, key_segments.value, key_prefix.value
    key_positions.value = jax.lax.dynamic_update_slice(key_positions.value, positions.astype(jnp.int32), (0, start))
    return start, key_segments.value, key_prefix.value, key_positions.value


def dot_product_attention(
    query: Array,
    key: Array,
    value: Array,
    *,
    mask: Array | None = None,
    bias: Array | None = None,
    scale: float | None = None,
    causal_blocks: int = 1,
    skip_masked_blocks: bool = False,
) -> Array:
    """Softmax attention with grouped-query support; returns [B, L, H, Dh].

    query [B, L, H, Dh]; key, value [B, S, K, Dh] with H a multiple of K (K == H is plain
    multi-head); mask bool broadcastable to [B, H, L, S]; bias (e.g. T5 relative position
    bias) broadcastable to [B, H, L, S]; scale defaults to 1/sqrt(Dh) (T5 passes 1.0).
    Logits and softmax are float32 whatever the input dtype. Rows whose mask is all false
    (padding queries) get a uniform average instead of NaN.

    The products run on [B, H, L, Dh] views with a hand-written backward (`_attention_core`):
    autodiff contracts the probabilities over their query axis as a transposed GEMM operand,
    which XLA's CPU GEMM runs at half speed. Measured on the 2-core CPU (B=2, L=S=512, H=8,
    Dh=64, f32, packed causal mask + full bias, interleaved runs): forward+backward 0.69x the
    time of the plain autodiff version (`reference_dot_product_attention`); forward unchanged.

    `causal_blocks` = n > 1 promises that the mask never lets a query see a key at a later array
    index (a causal decoder over packed rows without a bidirectional prefix; needs L == S). The
    queries are then split into n blocks and block i is computed against keys [0, end of block i)
    only, skipping the masked upper triangle: (n + 1) / 2n of the products. Unmasked rows give
    the same result; fully masked (padding) query rows average over their block's keys instead
    of all keys (such rows carry no loss).

    Worked example (L = S = 4, n = 2): queries 0-1 against keys 0-1, then queries 2-3 against
    keys 0-3: 12 of the 16 query-key pairs are computed.

    `skip_masked_blocks` (with causal_blocks = n > 1, a mask, no bias, L == S divisible by n)
    also skips every (query block, key block) pair the mask leaves empty in all rows, e.g.
    between the different segments of packed rows (`block_attention.block_sparse_attention`:
    online softmax, no [B, H, L, S] residuals). Otherwise ignored.
    """
    key, value = _expand_kv_heads(query, key, value)
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    # [B, L, H, Dh] -> [B, H, L, Dh] (small copies; the [B, H, L, S] tensors never move)
    q, k, v = (jnp.swapaxes(x, 1, 2) for x in (query, key, value))
    bounds = causal_block_bounds(q.shape[2], k.shape[2], causal_blocks)
    if skip_masked_blocks and len(bounds) > 1 and mask is not None and bias is None:
        out = block_attention.block_sparse_attention(q, k, v, mask, float(scale), len(bounds))
    elif len(bounds) == 1:
        out = _attention_core(q, k, v, mask, bias, float(scale))
    else:  # query rows [r0, r1) against keys [0, r1)
        out = jnp.concatenate([
            _attention_core(q[:, :, r0:r1], k[:, :, :r1], v[:, :, :r1], _block(mask, r0, r1),
                            _block(bias, r0, r1), float(scale))
            for r0, r1 in bounds], axis=2)
    return jnp.swapaxes(out, 1, 2)


def causal_block_bounds(query_len: int, key_len: int, blocks: int) -> list[tuple[int, int]]:
    """Query row ranges [r0, r1) of `dot_product_attention`'s causal blocks; block [r0, r1) sees
    keys [0, r1). One block (the whole product) unless L == S and L splits evenly.

    Worked example: causal_block_bounds(512, 512, 4) -> [(0, 128), (128, 256), (256, 384), (384, 512)]
    """
    if blocks < 1:
        raise ValueError(f"causal_blocks must be >= 1, got {blocks}")
    if blocks == 1 or query_len != key_len or query_len % blocks:
        return [(0, query_len)]
    size = query_len // blocks
    return [(i * size, (i + 1) * size) for i in range(blocks)]


def _block(x: Array | None, r0: int, r1: int) -> Array | None:
    """Rows [r0, r1) and keys [0, r1) of a mask or bias broadcastable to [B, H, L, S]."""
    if x is None:
        return None
    rows = slice(r0, r1) if x.shape[-2] > 1 else slice(None)
    keys = slice(0, r1) if x.shape[-1] > 1 else slice(None)
    return x[..., rows, keys]


def reference_dot_product_attention(
    query: Array,
    key: Array,
    value: Array,
    *,
    mask: Array | None = None,
    bias: Array | None = None,
    scale: float | None = None,
) -> Array:
    """Plain autodiff attention, same contract as `dot_product_attention` (tests, benchmarks)."""
    key, value = _expand_kv_heads(query, key, value)
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    q, k = jnp.swapaxes(query, 1, 2), jnp.swapaxes(key, 1, 2)
    probs = _attention_probs(q, k, mask, bias, float(scale)).astype(value.dtype)
    # [B, H, L, S] x [B, S, H, Dh] -> [B, L, H, Dh]
    return jnp.einsum("bhls,bshd->blhd", probs, value)


def _expand_kv_heads(query: Array, key: Array, value: Array) -> tuple[Array, Array]:
    """key, value [B, S, K, Dh] -> [B, S, H, Dh] for H query heads; head h uses kv head
    h // (H / K) (grouped-query attention). Unchanged when K == H."""
    groups = query.shape[2] // key.shape[2]
    if groups == 1:
        return key, value
    return jnp.repeat(key, groups, axis=2), jnp.repeat(value, groups, axis=2)


def _attention_probs(q: Array, k: Array, mask: Array | None, bias: Array | None, scale: float) -> Array:
    # q [B, H, L, Dh] x k [B, H, S, Dh] -> float32 probabilities [B, H, L, S]
    logits = jnp.einsum("bhld,bhsd->bhls", q, k, preferred_element_type=jnp.float32) * scale
    if bias is not None:
        logits = logits + bias.astype(jnp.float32)
    if mask is not None:
        logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
    return jax.nn.softmax(logits, axis=-1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _attention_core(q: Array, k: Array, v: Array, mask: Array | None, bias: Array | None,
                    scale: float) -> Array:
    """softmax(q k^T * scale + bias, masked) v on [B, H, L|S, Dh] arrays -> [B, H, L, Dh]."""
    probs = _attention_probs(q, k, mask, bias, scale)
    return jnp.einsum("bhls,bhsd->bhld", probs.astype(v.dtype), v)


def _attention_core_fwd(q, k, v, mask, bias, scale):
    probs = _attention_probs(q, k, mask, bias, scale)
    out = jnp.einsum("bhls,bhsd->bhld", probs.astype(v.dtype), v)
    return out, (q, k, v, mask, bias, probs, out)


def _attention_core_bwd(scale, residuals, d_out):
    q, k, v, mask, bias, probs, out = residuals
    # dV^T [B, H, Dh, S] = dO^T P: P enters as the row-major right operand (the fast GEMM form);
    # P^T dO, autodiff's choice, runs at half speed on CPU. Same for dK^T below.
    d_v_t = jnp.einsum("bhld,bhls->bhds", d_out, probs.astype(d_out.dtype))
    d_probs = jnp.einsum("bhld,bhsd->bhls", d_out, v, preferred_element_type=jnp.float32)
    # softmax backward: dS = P (dP - sum_s P dP); sum_s P dP = dO . O (a [B, H, L] reduction over Dh)
    delta = jnp.sum(d_out.astype(jnp.float32) * out.astype(jnp.float32), axis=-1, keepdims=True)
    d_logits = probs * (d_probs - delta)
    if mask is not None:  # masked logits were replaced by a constant: no gradient reaches them
        d_logits = jnp.where(mask, d_logits, 0.0)
    d_bias = None if bias is None else _sum_to_shape(d_logits, bias.shape).astype(bias.dtype)
    d_scaled = (d_logits * scale).astype(q.dtype)
    d_q = jnp.einsum("bhls,bhsd->bhld", d_scaled, k)
    d_k_t = jnp.einsum("bhld,bhls->bhds", q, d_scaled)
    return d_q, jnp.swapaxes(d_k_t, 2, 3), jnp.swapaxes(d_v_t, 2, 3), None, d_bias


_attention_core.defvjp(_attention_core_fwd, _attention_core_bwd)


def _sum_to_shape(x: Array, shape: tuple[int, ...]) -> Array:
    """Sums x over the dims that `shape` broadcasts (missing leading dims or size-1 dims)."""
    x = jnp.sum(x, axis=tuple(range(x.ndim - len(shape)))) if x.ndim > len(shape) else x
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and x.shape[i] != 1)
    return jnp.sum(x, axis=axes, keepdims=True) if axes else x
