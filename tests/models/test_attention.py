"""Attention (masks, softmax attention, causal blocks) against hand-computed arrays and
independent references (numpy, jax.nn, autodiff of the plain formula)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.models import attention


def test_mask_worked_example_from_docstring():
    seg = jnp.array([[1, 1, 1, 2, 2, 0]])
    prefix = jnp.array([[1, 1, 0, 1, 0, 0]])
    mask = attention.make_attention_mask(seg, seg, causal=True, bidirectional_query=prefix, bidirectional_key=prefix)
    want = np.array(
        [
            [1, 1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [0, 0, 0, 1, 0, 0],
            [0, 0, 0, 1, 1, 0],
            [0, 0, 0, 0, 0, 0],
        ],
        bool,
    )
    assert mask.shape == (1, 1, 6, 6)
    np.testing.assert_array_equal(mask[0, 0], want)
    bidir = attention.make_attention_mask(seg, seg, causal=False)
    np.testing.assert_array_equal(bidir[0, 0, 1], [1, 1, 1, 0, 0, 0])


def _numpy_attention(q, k, v, mask, scale):
    groups = q.shape[2] // k.shape[2]
    k = np.repeat(k, groups, axis=2)
    v = np.repeat(v, groups, axis=2)
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) * scale
    logits = np.where(mask, logits, -1e30)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return np.einsum("bhqk,bkhd->bqhd", probs, v)


def test_grouped_query_attention_matches_numpy():
    rng = np.random.default_rng(4)
    q = rng.normal(size=(2, 5, 4, 8)).astype(np.float32)
    k = rng.normal(size=(2, 5, 2, 8)).astype(np.float32)
    v = rng.normal(size=(2, 5, 2, 8)).astype(np.float32)
    seg = jnp.array([[1, 1, 1, 2, 2], [1, 1, 1, 1, 0]])
    mask = attention.make_attention_mask(seg, seg, causal=True)
    got = attention.dot_product_attention(q, k, v, mask=mask)
    want = _numpy_attention(q, k, v, np.asarray(mask), 1 / np.sqrt(8))
    # The padding query row (all masked) is undefined; compare the real rows.
    real = np.asarray(seg) != 0
    np.testing.assert_allclose(np.asarray(got)[real], want[real], rtol=1e-5, atol=1e-5)


def test_attention_bias_and_scale_match_numpy_and_jax_reference():
    rng = np.random.default_rng(6)
    q = rng.normal(size=(1, 4, 2, 8)).astype(np.float32)
    k = rng.normal(size=(1, 6, 2, 8)).astype(np.float32)
    v = rng.normal(size=(1, 6, 2, 8)).astype(np.float32)
    bias = rng.normal(size=(1, 2, 4, 6)).astype(np.float32)
    mask = np.ones((1, 1, 4, 6), bool)
    mask[..., 5] = False
    got = attention.dot_product_attention(q, k, v, mask=mask, bias=bias, scale=1.0)
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) + bias
    want = _numpy_attention_from_logits(np.where(mask, logits, -1e30), v)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    ref = jax.nn.dot_product_attention(q, k, v, bias=bias, mask=mask, scale=1.0)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def _numpy_attention_from_logits(logits, v):
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return np.einsum("bhqk,bkhd->bqhd", probs, v)


def test_bfloat16_attention_keeps_float32_softmax_close():
    rng = np.random.default_rng(7)
    q, k, v = (rng.normal(size=(1, 5, 4, 8)).astype(np.float32) for _ in range(3))
    exact = attention.dot_product_attention(q, k, v)
    low = attention.dot_product_attention(*(jnp.asarray(x, jnp.bfloat16) for x in (q, k, v)))
    assert low.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(low, np.float32), exact, atol=5e-2)


def _attention_grads(fn, q, k, v, bias, mask, cotangent):
    def loss(q, k, v, bias):
        return jnp.sum(fn(q, k, v, bias=bias, mask=mask, scale=0.5) * cotangent)
    return jax.grad(loss, argnums=(0, 1, 2, 3))(q, k, v, bias)


def test_attention_hand_written_backward_matches_autodiff():
    # Grouped query heads (4 query / 2 kv), a packed causal mask with a padding query row
    # (all masked), and a bias broadcast over the batch: gradients for q, k, v and the bias.
    rng = np.random.default_rng(8)
    q = jnp.asarray(rng.normal(size=(2, 6, 4, 8)), jnp.float32)
    k, v = (jnp.asarray(rng.normal(size=(2, 6, 2, 8)), jnp.float32) for _ in range(2))
    bias = jnp.asarray(rng.normal(size=(1, 4, 6, 6)), jnp.float32)
    cotangent = jnp.asarray(rng.normal(size=(2, 6, 4, 8)), jnp.float32)
    seg = jnp.array([[1, 1, 1, 2, 2, 0], [1, 1, 1, 1, 1, 1]])
    mask = attention.make_attention_mask(seg, seg, causal=True)
    got = _attention_grads(attention.dot_product_attention, q, k, v, bias, mask, cotangent)
    # Independent reference: jax's own attention under autodiff, on the rows that see a key.
    real = (seg != 0)[:, :, None, None]
    want = _attention_grads(jax.nn.dot_product_attention, q, k, v, bias, mask, cotangent * real)
    got_real = _attention_grads(attention.dot_product_attention, q, k, v, bias, mask, cotangent * real)
    for g, w in zip(got_real, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    # With the padding row's cotangent too: the plain formula under autodiff.
    plain = _attention_grads(attention.reference_dot_product_attention, q, k, v, bias, mask, cotangent)
    for g, w in zip(got, plain):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_causal_block_bounds_worked_example_and_fallbacks():
    assert attention.causal_block_bounds(512, 512, 4) == [(0, 128), (128, 256), (256, 384), (384, 512)]
    assert attention.causal_block_bounds(6, 6, 1) == [(0, 6)]
    assert attention.causal_block_bounds(6, 9, 3) == [(0, 6)]  # queries against a longer cache
    assert attention.causal_block_bounds(6, 6, 4) == [(0, 6)]  # 6 rows do not split in 4
    with pytest.raises(ValueError, match="causal_blocks must be >= 1"):
        attention.causal_block_bounds(6, 6, 0)


def test_causal_blocks_equal_one_block_on_every_row_that_sees_a_key():
    # Two packed rows with padding (a fully masked query row), grouped-query heads and a bias:
    # blocked attention (queries in 4 blocks, each against the keys up to its end) gives the
    # same outputs and the same q/k/v/bias gradients as the whole product.
    rng = np.random.default_rng(10)
    q = jnp.asarray(rng.normal(size=(2, 8, 4, 8)), jnp.float32)
    k, v = (jnp.asarray(rng.normal(size=(2, 8, 2, 8)), jnp.float32) for _ in range(2))
    bias = jnp.asarray(rng.normal(size=(2, 4, 8, 8)), jnp.float32)
    seg = jnp.array([[1, 1, 1, 2, 2, 2, 2, 0], [1, 1, 2, 2, 3, 3, 3, 3]])
    mask = attention.make_attention_mask(seg, seg, causal=True)
    real = (seg != 0)[:, :, None, None]
    cotangent = jnp.asarray(rng.normal(size=(2, 8, 4, 8)), jnp.float32) * real

    def attend(blocks):
        def fn(q, k, v, bias, mask, scale):
            return attention.dot_product_attention(q, k, v, bias=bias, mask=mask, scale=scale,
                                                causal_blocks=blocks)
        return fn

    whole = attend(1)(q, k, v, bias, mask, 0.5)
    for blocks in (2, 4):
        got = attend(blocks)(q, k, v, bias, mask, 0.5)
        np.testing.assert_allclose(got * real, whole * real, rtol=1e-5, atol=1e-6)
        got_grads = _attention_grads(lambda *a, **kw: attend(blocks)(*a, **kw), q, k, v, bias, mask, cotangent)
        want_grads = _attention_grads(lambda *a, **kw: attend(1)(*a, **kw), q, k, v, bias, mask, cotangent)
        for g, w in zip(got_grads, want_grads):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    # Keys past a block's end are never read: with a mask that breaks the causal promise (all
    # pairs visible), the first block's rows equal attention over the first block's keys only.
    everything = jnp.ones((2, 1, 8, 8), bool)
    first = attend(2)(q, k, v, None, everything, 0.5)[:, :4]
    np.testing.assert_allclose(first, attend(1)(q[:, :4], k[:, :4], v[:, :4], None, None, 0.5),
                               rtol=1e-6, atol=1e-6)


def test_sliding_window_mask_worked_example_from_docstring():
    positions = jnp.array([[0, 1, 2, 3]])
    segments = jnp.ones((1, 4), jnp.int32)
    mask = attention.make_attention_mask(segments, segments, causal=True)
    mask = mask & attention.sliding_window_mask(positions, positions, 2)
    want = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], bool)
    np.testing.assert_array_equal(np.asarray(mask)[0, 0], want)


def test_branch_mask_worked_example_from_docstring():
    branch = jnp.array([[0, 0, 1, 1, 2]])
    causal = attention.make_attention_mask(jnp.ones_like(branch), jnp.ones_like(branch), causal=True)
    got = (causal & attention.branch_mask(branch))[0, 0].astype(int)
    np.testing.assert_array_equal(got, [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0],
                                        [1, 1, 0, 0, 1]])
