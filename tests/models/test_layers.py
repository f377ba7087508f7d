"""Shared layers against hand-computed arrays and independent references (numpy, HF Llama)."""
import jax
import jax.numpy as jnp
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


def test_rmsnorm_scale_plus_one_worked_example_and_zero_init():
    x = np.array([[3.0, 4.0]], np.float32)
    norm = layers.RMSNorm(eps=0.0, scale_plus_one=True, scale_axes=("head_dim",))
    boxed = norm.init(jax.random.PRNGKey(0), x)["params"]["scale"]
    assert boxed.names == ("head_dim",)
    np.testing.assert_array_equal(boxed.value, [0.0, 0.0])  # starts as the identity scale
    got = norm.apply({"params": {"scale": np.array([0.5, -1.0], np.float32)}}, x)
    np.testing.assert_allclose(got, [[1.2728, 0.0]], atol=1e-4)  # docstring: [0.8485, 1.1314] * [1.5, 0]


def test_gated_mlp_geglu_matches_torch_tanh_gelu():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 3, 4)).astype(np.float32)
    gate, up, down = (rng.normal(size=s).astype(np.float32) for s in ((4, 6), (4, 6), (6, 4)))
    mlp = layers.GatedMLP(emb_dim=4, mlp_dim=6, activation="gelu_pytorch_tanh")
    params = {"params": {"gate": {"kernel": gate}, "up": {"kernel": up}, "down": {"kernel": down}}}
    act = torch.nn.functional.gelu(torch.tensor(x @ gate), approximate="tanh").numpy()
    np.testing.assert_allclose(mlp.apply(params, x), (act * (x @ up)) @ down, rtol=1e-5, atol=1e-5)


def test_rotary_inv_freq_argument_equals_theta():
    x = jnp.asarray(np.random.default_rng(8).normal(size=(1, 5, 2, 8)).astype(np.float32))
    positions = jnp.arange(5)[None, :]
    by_theta = layers.rotary_embedding(x, positions, theta=50.0)
    by_freq = layers.rotary_embedding(x, positions, inv_freq=layers.rope_frequencies(8, 50.0))
    np.testing.assert_array_equal(by_theta, by_freq)


def test_output_head_logsumexp_and_logits_at_match_the_full_logits_in_numpy():
    """Vocabulary blocks of 7 over 30 ids (4 full blocks and a remainder of 2), tied ([V, D]) and
    untied ([D, V]) kernels, with an input scale; reference: numpy over the full [N, V] logits."""
    rng = np.random.default_rng(0)
    table = rng.standard_normal((30, 8)).astype(np.float32)
    x = rng.standard_normal((5, 8)).astype(np.float32)
    ids = np.array([0, 29, 7, 13, 13])
    logits = (x * 0.5) @ table.T
    want_lse = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    for head in (layers.OutputHead(jnp.asarray(table), transposed=True, input_scale=0.5),
                 layers.OutputHead(jnp.asarray(table.T), input_scale=0.5)):
        for block in (7, 30, 64):
            np.testing.assert_allclose(head.logsumexp(jnp.asarray(x), block=block), want_lse, rtol=1e-5)
        np.testing.assert_allclose(head.logits_at(jnp.asarray(x), jnp.asarray(ids)), logits[np.arange(5), ids],
                                   rtol=1e-5, atol=1e-6)
