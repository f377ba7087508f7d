"""Shared layers against hand-computed arrays and independent references (numpy, HF Llama)."""
import jax
import jax.numpy as jnp
import pytest
import numpy as np
import torch
from transformers.models.llama import modeling_llama

from flan_jax.models import layers


def test_rmsnorm_matches_numpy_formula():
    x = np.random.default_rng(0).normal(size=(2, 3, 8)).astype(np.float32)
    norm = layers.RMSNorm(eps=1e-6)
    params = norm.init(jax.random.PRNGKey(0), x)
    scale = np.linspace(0.5, 2.0, 8).astype(np.float32)
    params = {"params": {"scale": scale}}
    want = x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + 1e-6) * scale
    np.testing.assert_allclose(norm.apply(params, x), want, rtol=1e-5, atol=1e-6)


def test_dense_general_multi_dim_kernel_and_axes():
    x = np.random.default_rng(1).normal(size=(2, 5, 6)).astype(np.float32)
    dense = layers.DenseGeneral(features=(3, 4), kernel_axes=("embed", "heads", "head_dim"))
    boxed = dense.init(jax.random.PRNGKey(0), x)["params"]["kernel"]
    assert boxed.names == ("embed", "heads", "head_dim")
    kernel = np.asarray(boxed.value)
    want = np.einsum("bld,dhk->blhk", x, kernel)
    np.testing.assert_allclose(dense.apply({"params": {"kernel": kernel}}, x), want, rtol=1e-5, atol=1e-5)
    out = layers.DenseGeneral(features=6, num_in=2, kernel_axes=("heads", "head_dim", "embed"))
    k2 = np.random.default_rng(2).normal(size=(3, 4, 6)).astype(np.float32)
    y = np.random.default_rng(3).normal(size=(2, 5, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(
        out.apply({"params": {"kernel": k2}}, y), np.einsum("blhk,hkd->bld", y, k2), rtol=1e-5, atol=1e-5
    )


def test_embed_lookup_and_attend():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    emb = layers.Embed(num_embeddings=4, features=3)
    ids = np.array([[3, 0, 1]])
    np.testing.assert_array_equal(emb.apply({"params": {"embedding": table}}, ids), table[ids])
    x = np.ones((1, 1, 3), np.float32)
    got = emb.apply({"params": {"embedding": table}}, x, method=layers.Embed.attend)
    np.testing.assert_array_equal(got[0, 0], table.sum(axis=1))


def test_mask_worked_example_from_docstring():
    seg = jnp.array([[1, 1, 1, 2, 2, 0]])
    prefix = jnp.array([[1, 1, 0, 1, 0, 0]])
    mask = layers.make_attention_mask(seg, seg, causal=True, bidirectional_query=prefix, bidirectional_key=prefix)
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
    bidir = layers.make_attention_mask(seg, seg, causal=False)
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
    mask = layers.make_attention_mask(seg, seg, causal=True)
    got = layers.dot_product_attention(q, k, v, mask=mask)
    want = _numpy_attention(q, k, v, np.asarray(mask), 1 / np.sqrt(8))
    # The padding query row (all masked) is undefined; compare the real rows.
    real = np.asarray(seg) != 0
    np.testing.assert_allclose(np.asarray(got)[real], want[real], rtol=1e-5, atol=1e-5)


def test_rotary_matches_hf_llama_rotate_half():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1, 6, 2, 8)).astype(np.float32)
    positions = np.array([[0, 1, 2, 0, 1, 2]])
    got = layers.rotary_embedding(jnp.asarray(x), jnp.asarray(positions), theta=10000.0)
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, 8, 2, dtype=torch.float32) / 8))
    freqs = torch.tensor(positions, dtype=torch.float32)[..., None] * inv_freq
    emb = torch.cat([freqs, freqs], dim=-1)
    xt = torch.tensor(x).transpose(1, 2)  # HF layout [B, N, L, Dh]
    want, _ = modeling_llama.apply_rotary_pos_emb(xt, xt, emb.cos(), emb.sin())
    np.testing.assert_allclose(got, want.transpose(1, 2).numpy(), rtol=1e-5, atol=1e-5)


def test_attention_bias_and_scale_match_numpy_and_jax_reference():
    rng = np.random.default_rng(6)
    q = rng.normal(size=(1, 4, 2, 8)).astype(np.float32)
    k = rng.normal(size=(1, 6, 2, 8)).astype(np.float32)
    v = rng.normal(size=(1, 6, 2, 8)).astype(np.float32)
    bias = rng.normal(size=(1, 2, 4, 6)).astype(np.float32)
    mask = np.ones((1, 1, 4, 6), bool)
    mask[..., 5] = False
    got = layers.dot_product_attention(q, k, v, mask=mask, bias=bias, scale=1.0)
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
    exact = layers.dot_product_attention(q, k, v)
    low = layers.dot_product_attention(*(jnp.asarray(x, jnp.bfloat16) for x in (q, k, v)))
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
    mask = layers.make_attention_mask(seg, seg, causal=True)
    got = _attention_grads(layers.dot_product_attention, q, k, v, bias, mask, cotangent)
    # Independent reference: jax's own attention under autodiff, on the rows that see a key.
    real = (seg != 0)[:, :, None, None]
    want = _attention_grads(jax.nn.dot_product_attention, q, k, v, bias, mask, cotangent * real)
    got_real = _attention_grads(layers.dot_product_attention, q, k, v, bias, mask, cotangent * real)
    for g, w in zip(got_real, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    # With the padding row's cotangent too: the plain formula under autodiff.
    plain = _attention_grads(layers.reference_dot_product_attention, q, k, v, bias, mask, cotangent)
    for g, w in zip(got, plain):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_linear_hand_written_backward_matches_autodiff_of_dot():
    rng = np.random.default_rng(9)
    x = jnp.asarray(rng.normal(size=(2, 3, 5)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(5, 7)), jnp.float32)
    cotangent = jnp.asarray(rng.normal(size=(2, 3, 7)), jnp.float32)

    def grads(fn, k):
        return jax.grad(lambda x, k: jnp.sum(fn(x, k) * cotangent), argnums=(0, 1))(x, k)

    got = grads(lambda x, k: layers.linear(x, k), kernel)
    want = grads(lambda x, k: jnp.einsum("bti,io->bto", x, k), kernel)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    # Transposed kernel [O, I] (tied output head): same gradients, transposed.
    got_t = grads(lambda x, k: layers.linear(x, k, True), kernel.T)
    np.testing.assert_allclose(got_t[0], want[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_t[1], want[1].T, rtol=1e-5, atol=1e-5)


def test_causal_block_bounds_worked_example_and_fallbacks():
    assert layers.causal_block_bounds(512, 512, 4) == [(0, 128), (128, 256), (256, 384), (384, 512)]
    assert layers.causal_block_bounds(6, 6, 1) == [(0, 6)]
    assert layers.causal_block_bounds(6, 9, 3) == [(0, 6)]  # queries against a longer cache
    assert layers.causal_block_bounds(6, 6, 4) == [(0, 6)]  # 6 rows do not split in 4
    with pytest.raises(ValueError, match="causal_blocks must be >= 1"):
        layers.causal_block_bounds(6, 6, 0)


def test_causal_blocks_equal_one_block_on_every_row_that_sees_a_key():
    # Two packed rows with padding (a fully masked query row), grouped-query heads and a bias:
    # blocked attention (queries in 4 blocks, each against the keys up to its end) gives the
    # same outputs and the same q/k/v/bias gradients as the whole product.
    rng = np.random.default_rng(10)
    q = jnp.asarray(rng.normal(size=(2, 8, 4, 8)), jnp.float32)
    k, v = (jnp.asarray(rng.normal(size=(2, 8, 2, 8)), jnp.float32) for _ in range(2))
    bias = jnp.asarray(rng.normal(size=(2, 4, 8, 8)), jnp.float32)
    seg = jnp.array([[1, 1, 1, 2, 2, 2, 2, 0], [1, 1, 2, 2, 3, 3, 3, 3]])
    mask = layers.make_attention_mask(seg, seg, causal=True)
    real = (seg != 0)[:, :, None, None]
    cotangent = jnp.asarray(rng.normal(size=(2, 8, 4, 8)), jnp.float32) * real

    def attend(blocks):
        def fn(q, k, v, bias, mask, scale):
            return layers.dot_product_attention(q, k, v, bias=bias, mask=mask, scale=scale,
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
