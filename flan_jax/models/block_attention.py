"""Attention that skips the (query block, key block) pairs its mask leaves empty.

In a packed row, a query sees only the keys of its own segment, so most of the causal lower
triangle is masked away (issue 16: at 8 x 2048 rows of FLAN-like examples, median 200 tokens,
the cross-segment pairs are computed and then discarded). Here the row is cut into n blocks
of L / n positions; pair (i, j) is computed only when some query of block i may see some key of
block j in some row of the batch (`needed_blocks`, read from the mask inside the graph, so
packing, padding, causality and sliding windows all count), always for j <= i. Each pair runs
under `lax.cond`, which on CPU executes only the taken branch.

The softmax over a query block's key blocks is combined online (running max and sum, as in
FlashAttention, Dao et al. 2022, Algorithm 1), so nothing of shape [B, H, L, S] is stored: the
backward keeps q, k, v, the output and the per-query log-sum-exp, and recomputes each needed
pair's probabilities (Algorithm 2's recomputation; the same dV^T = dO^T P and dK^T = Q^T dS GEMM
forms as `attention._attention_core_bwd`).

Rows that see a key give the reference attention's values and gradients (tests). A fully masked
(padding) query row averages the values of the key blocks computed for its block, where the
reference averages all keys; such rows carry no loss and no later query sees them.

Worked example (L = 8, n = 4 blocks of 2, one row, causal, segments [1 1 1 1 2 2 3 3]):
    needed (query block i, key block j):  i=0: j=0    i=1: j=0, 1    i=2: j=2    i=3: j=3
    -> 5 of the 10 causal pairs are computed ((2, 0), (2, 1), (3, 0), (3, 1), (3, 2) are
    skipped). The diagonal pairs always run, so every query block has a key block.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

Array = jax.Array
_NEG = float(jnp.finfo(jnp.float32).min)


def needed_blocks(mask: Array, blocks: int) -> Array:
    """Bool [n, n]: pair (i, j) has a visible (query, key) in some row and head, j <= i, and
    always the diagonal. mask: bool [B|1, H|1, L, S] with L and S divisible by n."""
    b, h, l, s = mask.shape
    m = mask.reshape(b, h, blocks, l // blocks, blocks, s // blocks)
    any_visible = jnp.any(m, axis=(0, 1, 3, 5))
    lower = jnp.tril(jnp.ones((blocks, blocks), bool), -1)
    return (any_visible & lower) | jnp.eye(blocks, dtype=bool)


def block_sparse_attention(q: Array, k: Array, v: Array, mask: Array, scale: float, blocks: int) -> Array:
    """softmax(q k^T * scale, masked) v on [B, H, L, Dh] views -> [B, H, L, Dh], skipping the
    block pairs `needed_blocks` rules out. The mask must be causal in array index (no query
    sees a later key) and broadcastable to [B, H, L, L]; L must divide by `blocks`."""
    need = needed_blocks(mask, blocks)
    return _block_attention(q, k, v, mask, need, float(scale), int(blocks))


def _rows(x: Array, i: Array, size: int, axis: int) -> Array:
    """Block i (traced) of `size` along `axis`; an axis of length 1 (broadcast) is kept whole."""
    if x.shape[axis] == 1:
        return x
    return jax.lax.dynamic_slice_in_dim(x, i * size, size, axis)


def _logits(q_i: Array, k_j: Array, mask_ij: Array, scale: float) -> Array:
    # [B, H, b, Dh] x [B, H, b, Dh] -> float32 [B, H, b, b], masked entries at the float32 minimum
    s = jnp.einsum("bhld,bhsd->bhls", q_i, k_j, preferred_element_type=jnp.float32) * scale
    return jnp.where(mask_ij, s, _NEG)


# The loops over block pairs are lax.scans with one lax.cond in the body, so the program holds
# one copy of each pair's computation whatever the number of blocks (unrolled Python loops of
# n(n + 1) / 2 conds took ~1 minute per layer to compile at n = 8 on the 2-core CPU).

def _forward(q, k, v, mask, need, scale, blocks):
    batch, heads, length, dim = q.shape
    size = length // blocks

    def query_block(_, i):
        q_i, m_i = _rows(q, i, size, 2), _rows(mask, i, size, 2)

        def key_block(carry, j):
            def update(c):
                run_max, run_sum, acc = c
                s = _logits(q_i, _rows(k, j, size, 2), _rows(m_i, j, size, 3), scale)
                new_max = jnp.maximum(run_max, jnp.max(s, axis=-1, keepdims=True))
                p = jnp.exp(s - new_max)
                correction = jnp.exp(run_max - new_max)
                v_j = _rows(v, j, size, 2)
                pv = jnp.einsum("bhls,bhsd->bhld", p.astype(v.dtype), v_j, preferred_element_type=jnp.float32)
                return new_max, run_sum * correction + jnp.sum(p, axis=-1, keepdims=True), acc * correction + pv

            return jax.lax.cond(need[i, j], update, lambda c: c, carry), None

        init = (jnp.full((batch, heads, size, 1), _NEG, jnp.float32),  # running max
                jnp.zeros((batch, heads, size, 1), jnp.float32),  # running sum of exp
                jnp.zeros((batch, heads, size, dim), jnp.float32))  # running sum of exp x v
        (run_max, run_sum, acc), _ = jax.lax.scan(key_block, init, jnp.arange(blocks))
        # run_sum >= 1: the diagonal pair always runs
        return None, ((acc / run_sum).astype(q.dtype), run_max + jnp.log(run_sum))

    _, (out, lse) = jax.lax.scan(query_block, None, jnp.arange(blocks))
    # [n, B, H, b, X] -> [B, H, L, X]
    join = lambda x: jnp.moveaxis(x, 0, 2).reshape(batch, heads, length, x.shape[-1])  # noqa: E731
    return join(out), join(lse)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _block_attention(q, k, v, mask, need, scale, blocks):
    return _forward(q, k, v, mask, need, scale, blocks)[0]


def _block_attention_fwd(q, k, v, mask, need, scale, blocks):
    out, lse = _forward(q, k, v, mask, need, scale, blocks)
    return out, (q, k, v, mask, need, out, lse)


def _block_attention_bwd(scale, blocks, residuals, d_out):
    q, k, v, mask, need, out, lse = residuals
    batch, heads, length, dim = q.shape
    size = length // blocks
    # softmax backward: dS = P (dP - delta), delta = sum_s P dP = dO . O per query ([B, H, L, 1])
    delta = jnp.sum(d_out.astype(jnp.float32) * out.astype(jnp.float32), axis=-1, keepdims=True)

    def key_block(d_q, j):  # outer: key block j; dK_j, dV_j accumulate over the query blocks
        k_j, v_j, m_j = _rows(k, j, size, 2), _rows(v, j, size, 2), _rows(mask, j, size, 3)

        def query_block(carry, i):
            d_q, dkt_j, dvt_j = carry

            def grads(_):
                q_i, d_o = _rows(q, i, size, 2), _rows(d_out, i, size, 2)
                m_ij = _rows(m_j, i, size, 2)
                p = jnp.exp(_logits(q_i, k_j, m_ij, scale) - _rows(lse, i, size, 2))  # [B, H, b, b]
                # dV^T and dK^T: P / dS as the row-major right operand (attention._attention_core_bwd)
                ddvt = jnp.einsum("bhld,bhls->bhds", d_o, p.astype(d_o.dtype), preferred_element_type=jnp.float32)
                d_p = jnp.einsum("bhld,bhsd->bhls", d_o, v_j, preferred_element_type=jnp.float32)
                d_s = (jnp.where(m_ij, p * (d_p - _rows(delta, i, size, 2)), 0.0) * scale).astype(q.dtype)
                ddq = jnp.einsum("bhls,bhsd->bhld", d_s, k_j, preferred_element_type=jnp.float32)
                ddkt = jnp.einsum("bhld,bhls->bhds", q_i, d_s, preferred_element_type=jnp.float32)
                return ddq, ddkt, ddvt

            def nothing(_):
                return (jnp.zeros((batch, heads, size, dim), jnp.float32),
                        jnp.zeros((batch, heads, dim, size), jnp.float32),
                        jnp.zeros((batch, heads, dim, size), jnp.float32))

            ddq, ddkt, ddvt = jax.lax.cond(need[i, j], grads, nothing, None)
            d_q = jax.lax.dynamic_update_slice_in_dim(d_q, _rows(d_q, i, size, 2) + ddq, i * size, 2)
            return (d_q, dkt_j + ddkt, dvt_j + ddvt), None

        zeros_t = jnp.zeros((batch, heads, dim, size), jnp.float32)
        (d_q, dkt_j, dvt_j), _ = jax.lax.scan(query_block, (d_q, zeros_t, zeros_t), jnp.arange(blocks))
        return d_q, (dkt_j, dvt_j)

    d_q, (d_k_t, d_v_t) = jax.lax.scan(key_block, jnp.zeros(q.shape, jnp.float32), jnp.arange(blocks))
    # [n, B, H, Dh, b] -> [B, H, L, Dh]
    join_t = lambda x: jnp.moveaxis(x, 0, 3).reshape(batch, heads, dim, length).swapaxes(2, 3)  # noqa: E731
    return d_q.astype(q.dtype), join_t(d_k_t).astype(k.dtype), join_t(d_v_t).astype(v.dtype), None, None


_block_attention.defvjp(_block_attention_fwd, _block_attention_bwd)
