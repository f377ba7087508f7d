"""Decoder behaviour: packing, causality, prefix-LM attention, scan/remat equivalence, decode cache."""
import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.models.decoder import Decoder, DecoderConfig, init_cache

TINY = DecoderConfig(
    vocab_size=64, emb_dim=32, num_heads=4, num_kv_heads=2, head_dim=8, mlp_dim=48, num_layers=2
)


def _init(cfg, length=8):
    tokens = jnp.ones((1, length), jnp.int32)
    variables = Decoder(cfg).init(jax.random.PRNGKey(0), {"decoder_input_tokens": tokens})
    return nn.meta.unbox(variables["params"])


def _forward(cfg, params, tokens, segment_ids=None, positions=None, prefix=None):
    batch = {"decoder_input_tokens": jnp.asarray(tokens)}
    if segment_ids is not None:
        batch["decoder_segment_ids"] = jnp.asarray(segment_ids)
        batch["decoder_positions"] = jnp.asarray(positions)
    if prefix is not None:
        batch["decoder_causal_attention"] = jnp.asarray(prefix)
    return np.asarray(_apply_fn(cfg)(params, batch))


@functools.lru_cache(maxsize=None)
def _apply_fn(cfg):
    return jax.jit(lambda p, b: Decoder(cfg).apply({"params": p}, b))


@pytest.mark.parametrize("prefix_lm", [False, True])
def test_packed_row_equals_segments_run_alone(prefix_lm):
    cfg = dataclasses.replace(TINY, prefix_lm=prefix_lm)
    params = _init(cfg)
    a, b = [5, 9, 3, 7], [11, 2, 8]
    prefix_a, prefix_b = [1, 1, 0, 0], [1, 0, 0]
    packed = _forward(
        cfg, params, [a + b + [0]], [[1] * 4 + [2] * 3 + [0]], [[0, 1, 2, 3, 0, 1, 2, 0]],
        [prefix_a + prefix_b + [0]] if prefix_lm else None,
    )
    alone_a = _forward(cfg, params, [a], [[1] * 4], [[0, 1, 2, 3]], [prefix_a] if prefix_lm else None)
    alone_b = _forward(cfg, params, [b], [[1] * 3], [[0, 1, 2]], [prefix_b] if prefix_lm else None)
    np.testing.assert_allclose(packed[0, :4], alone_a[0], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(packed[0, 4:7], alone_b[0], atol=1e-5, rtol=1e-5)


def test_causal_attention_blocks_do_not_change_logits():
    # TINY computes attention in 4 query blocks; one block is the whole [L, L] product.
    params = _init(TINY)
    tokens, segments = [[5, 9, 3, 7, 11, 2, 8, 0]], [[1, 1, 1, 1, 2, 2, 2, 0]]
    positions = [[0, 1, 2, 3, 0, 1, 2, 0]]
    blocked = _forward(TINY, params, tokens, segments, positions)
    whole = _forward(dataclasses.replace(TINY, causal_attention_blocks=1), params, tokens, segments, positions)
    np.testing.assert_allclose(blocked[0, :7], whole[0, :7], atol=1e-5, rtol=1e-5)


def _embedding_grads(cfg, tokens, prefix=None):
    """d(sum of logits at each position t)/d(input embedding at each position s): [t, s] norms."""
    model = Decoder(cfg)
    batch = {"decoder_input_tokens": jnp.asarray(tokens)}
    if prefix is not None:
        batch["decoder_causal_attention"] = jnp.asarray(prefix)
    variables = model.init(jax.random.PRNGKey(1), batch)
    params, perturb = variables["params"], variables["perturbations"]

    def per_position_loss(p):  # [L]: log p(token 3) at every position
        logits = model.apply({"params": params, "perturbations": p}, batch)
        return jax.nn.log_softmax(logits[0])[:, 3]

    jac = jax.jit(jax.jacrev(per_position_loss))(perturb)["embedded"]  # [L, 1, L, D]
    norms = np.abs(np.asarray(jac[:, 0])).sum(-1)  # [t, s]
    return norms


def test_causal_loss_has_zero_gradient_wrt_later_embeddings():
    tokens = np.array([[4, 8, 15, 16, 23, 42]])
    norms = _embedding_grads(TINY, tokens)
    later = np.triu(np.ones_like(norms, dtype=bool), k=1)
    assert np.all(norms[later] == 0.0)
    assert np.all(norms[~later] > 0.0)


def test_prefix_lm_is_bidirectional_over_the_prefix_only():
    cfg = dataclasses.replace(TINY, prefix_lm=True)
    tokens = np.array([[4, 8, 15, 16, 23, 42]])
    prefix = np.array([[1, 1, 1, 0, 0, 0]])
    norms = _embedding_grads(cfg, tokens, prefix)
    want_nonzero = np.tril(np.ones((6, 6), bool))
    want_nonzero[:3, :3] = True  # prefix positions see the whole prefix
    np.testing.assert_array_equal(norms > 0, want_nonzero)


def _stack_layers(params, num_layers):
    layers_ = [params.pop(f"layers_{i}") for i in range(num_layers)]
    params["layers"] = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *layers_)
    return params


@pytest.mark.slow
@pytest.mark.parametrize("remat", ["none", "full", "dots"])
def test_scanned_and_rematerialized_layers_compute_the_same(remat):
    params = _init(TINY)
    tokens = np.array([[3, 1, 4, 1, 5, 9, 2, 6]])
    want = _forward(TINY, params, tokens)
    scanned_cfg = dataclasses.replace(TINY, scan_layers=True, remat=remat)
    scanned = _stack_layers(dict(params), TINY.num_layers)
    np.testing.assert_allclose(_forward(scanned_cfg, scanned, tokens), want, atol=1e-5, rtol=1e-5)
    batch = {"decoder_input_tokens": tokens}
    grads = jax.grad(lambda p: Decoder(scanned_cfg).apply({"params": p}, batch).sum())(scanned)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


def test_tied_head_uses_embedding_table():
    cfg = dataclasses.replace(TINY, tie_embeddings=True)
    params = _init(cfg)
    assert "lm_head" not in params
    tokens = np.array([[3, 1, 4]])
    hidden = {}

    def capture(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.module.name == "final_norm":
            hidden["x"] = out
        return out

    with nn.intercept_methods(capture):
        logits = Decoder(cfg).apply({"params": params}, {"decoder_input_tokens": tokens})
    table = np.asarray(params["embed"]["embedding"])
    np.testing.assert_allclose(logits, np.asarray(hidden["x"]) @ table.T, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("scan_layers", [False, True])
@pytest.mark.parametrize("prefix_lm", [False, True])
def test_cached_decoding_equals_full_forward(scan_layers, prefix_lm):
    cfg = dataclasses.replace(TINY, scan_layers=scan_layers, prefix_lm=prefix_lm)
    params = _init(cfg)
    model = Decoder(cfg)
    # Two rows with prompts of length 3 and 2 (right-padded), then 3 generated tokens each.
    prompts = np.array([[7, 3, 9], [5, 2, 0]])
    prompt_lens = np.array([3, 2])
    continuations = np.array([[4, 6, 8], [10, 12, 14]])
    prompt_prefix = np.array([[1, 1, 1], [1, 1, 0]]) if prefix_lm else None

    cache = init_cache(model, batch_size=2, max_length=8)
    logits, mut = model.apply(
        {"params": params, "cache": cache}, prompts, np.broadcast_to(np.arange(3), (2, 3)),
        (prompts != 0).astype(np.int32), prompt_prefix, method=Decoder.decode, mutable=["cache"],
    )
    step_logits = [logits[np.arange(2), prompt_lens - 1]]
    step = jax.jit(lambda c, tok, pos: model.apply(
        {"params": params, "cache": c}, tok, pos, method=Decoder.decode, mutable=["cache"]))
    cache = mut["cache"]
    for t in range(3):
        out, mut = step(cache, continuations[:, t : t + 1], (prompt_lens + t)[:, None])
        cache = mut["cache"]
        step_logits.append(out[:, 0])
    got = np.stack([np.asarray(x) for x in step_logits], axis=1)  # [B, 4, V]

    for row in range(2):
        seq = np.concatenate([prompts[row, : prompt_lens[row]], continuations[row]])
        prefix = None
        if prefix_lm:
            prefix = np.zeros((1, len(seq)), np.int32)
            prefix[0, : prompt_lens[row]] = 1
        full = _forward(cfg, params, seq[None], prefix=prefix)[0]
        np.testing.assert_allclose(got[row], full[prompt_lens[row] - 1 :], atol=1e-5, rtol=1e-5)


def test_feature_format_follows_prefix_lm():
    assert Decoder(TINY).FEATURE_FORMAT == "decoder"
    assert Decoder(dataclasses.replace(TINY, prefix_lm=True)).FEATURE_FORMAT == "prefix_lm"


def test_bad_config_values_are_refused():
    with pytest.raises(ValueError, match="num_kv_heads"):
        dataclasses.replace(TINY, num_kv_heads=3)
    with pytest.raises(ValueError, match="remat"):
        dataclasses.replace(TINY, remat="sometimes")
    with pytest.raises(ValueError, match="causal_attention_blocks must be >= 1"):
        dataclasses.replace(TINY, causal_attention_blocks=0)


def test_bfloat16_compute_stays_close_to_float32():
    params = _init(TINY)
    tokens = np.array([[3, 1, 4, 1, 5, 9, 2, 6]])
    exact = _forward(TINY, params, tokens)
    low = _forward(dataclasses.replace(TINY, dtype="bfloat16"), params, tokens)
    assert low.dtype == np.float32  # logits are float32 whatever the compute dtype
    np.testing.assert_allclose(low, exact, atol=0.1 * np.abs(exact).max())
