"""Segment-aware block attention: which block pairs run (hand-computed), values and gradients
against the plain autodiff attention, and the pairs it skips really are not computed."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.models import attention, block_attention


def test_needed_blocks_worked_example_from_docstring():
    seg = jnp.array([[1, 1, 1, 1, 2, 2, 3, 3]])
    mask = attention.make_attention_mask(seg, seg, causal=True)
    want = np.array([[1, 0, 0, 0],
                     [1, 1, 0, 0],
                     [0, 0, 1, 0],
                     [0, 0, 0, 1]], bool)
    np.testing.assert_array_equal(block_attention.needed_blocks(mask, 4), want)
    # a second row whose segment spans blocks 1-3 adds its pairs (the union over the batch)
    seg2 = jnp.array([[1, 1, 1, 1, 2, 2, 3, 3], [1, 1, 2, 2, 2, 2, 2, 2]])
    mask2 = attention.make_attention_mask(seg2, seg2, causal=True)
    want[2, 1] = want[3, 1] = want[3, 2] = True
    np.testing.assert_array_equal(block_attention.needed_blocks(mask2, 4), want)
    # padding-only blocks still run their diagonal pair
    pad = jnp.array([[1, 1, 0, 0]])
    np.testing.assert_array_equal(block_attention.needed_blocks(
        attention.make_attention_mask(pad, pad, causal=True), 2), [[1, 0], [0, 1]])


def _packed_inputs(seed, segments, heads=4, kv_heads=2, dim=8):
    rng = np.random.default_rng(seed)
    seg = jnp.asarray(segments)
    b, length = seg.shape
    q = jnp.asarray(rng.normal(size=(b, length, heads, dim)), jnp.float32)
    k, v = (jnp.asarray(rng.normal(size=(b, length, kv_heads, dim)), jnp.float32) for _ in range(2))
    mask = attention.make_attention_mask(seg, seg, causal=True)
    real = (seg != 0)[:, :, None, None]
    cotangent = jnp.asarray(rng.normal(size=q.shape), jnp.float32) * real  # padding rows carry no loss
    return q, k, v, mask, real, cotangent


SEGMENTS = [[1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 4, 4, 4, 4, 0, 0],
            [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 3, 3, 3]]


@pytest.mark.parametrize("blocks", [2, 4, 8])
def test_values_and_gradients_equal_reference_attention(blocks):
    q, k, v, mask, real, cotangent = _packed_inputs(0, SEGMENTS)

    def skipping(q, k, v):
        return attention.dot_product_attention(q, k, v, mask=mask, scale=0.3, causal_blocks=blocks,
                                               skip_masked_blocks=True)

    def reference(q, k, v):
        return attention.reference_dot_product_attention(q, k, v, mask=mask, scale=0.3)

    np.testing.assert_allclose(skipping(q, k, v) * real, reference(q, k, v) * real, rtol=1e-5, atol=1e-6)
    grads = [jax.grad(lambda *a, f=f: jnp.sum(f(*a) * cotangent), argnums=(0, 1, 2))(q, k, v)
             for f in (jax.jit(skipping), reference)]
    for got, want in zip(*grads):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_bfloat16_inputs_stay_close_to_float32_reference():
    q, k, v, mask, real, _ = _packed_inputs(1, SEGMENTS)
    got = attention.dot_product_attention(*(x.astype(jnp.bfloat16) for x in (q, k, v)), mask=mask,
                                          causal_blocks=4, skip_masked_blocks=True)
    assert got.dtype == jnp.bfloat16
    want = attention.reference_dot_product_attention(q, k, v, mask=mask)
    np.testing.assert_allclose(np.asarray(got, np.float32) * real, want * real, atol=3e-2)


def test_skipped_pairs_are_not_computed(monkeypatch):
    # A host callback inside the logits runs only when its cond branch is taken: count the pairs
    # computed forward and backward against the docstring example's hand count (5 of 10).
    calls = []
    real_logits = block_attention._logits

    def counting_logits(*args):
        jax.debug.callback(lambda: calls.append(1))
        return real_logits(*args)

    monkeypatch.setattr(block_attention, "_logits", counting_logits)
    q, k, v, mask, real, cotangent = _packed_inputs(2, [[1, 1, 1, 1, 2, 2, 3, 3]])
    fn = lambda q, k, v: attention.dot_product_attention(q, k, v, mask=mask, causal_blocks=4,  # noqa: E731
                                                         skip_masked_blocks=True)
    out, vjp = jax.vjp(fn, q, k, v)
    jax.block_until_ready(out)
    jax.effects_barrier()
    assert len(calls) == 5
    jax.block_until_ready(vjp(cotangent))
    jax.effects_barrier()
    assert len(calls) == 10
    want = attention.reference_dot_product_attention(q, k, v, mask=mask)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)


def test_falls_back_without_mask_or_with_bias():
    q, k, v, mask, real, _ = _packed_inputs(3, SEGMENTS)
    bias = jnp.ones((1, 4, 16, 16), jnp.float32)
    for kw in ({"mask": None}, {"mask": mask, "bias": bias}):
        got = attention.dot_product_attention(q, k, v, causal_blocks=4, skip_masked_blocks=True, **kw)
        want = attention.dot_product_attention(q, k, v, causal_blocks=4, **kw)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


# ---- in the decoder: packed == unpacked, gradients, the sharded step ------------------------

import dataclasses  # noqa: E402

from flan_jax.models.decoder import Decoder, DecoderConfig  # noqa: E402
from flan_jax.train.loss import cross_entropy_loss  # noqa: E402

SKIP = DecoderConfig(vocab_size=64, emb_dim=32, num_heads=4, num_kv_heads=2, head_dim=8, mlp_dim=48,
                     num_layers=2, attention_block_size=4)  # 16 positions -> 4 blocks, skipping
PLAIN = dataclasses.replace(SKIP, skip_masked_attention_blocks=False, causal_attention_blocks=1)


def _packed_and_alone():
    rng = np.random.default_rng(5)
    lengths = [5, 3, 6]  # + 2 padding = 16; segment 2 sits inside block 1, segment 3 spans 2-3
    segs = [rng.integers(3, 64, n).tolist() for n in lengths]
    tokens = sum(segs, []) + [0, 0]
    seg_ids = sum([[i + 1] * n for i, n in enumerate(lengths)], []) + [0, 0]
    positions = sum([list(range(n)) for n in lengths], []) + [0, 0]
    targets = tokens[1:] + [0]
    weights = [float(t != 0 and s != 0 and (i + 1 < 16 and seg_ids[i + 1] == s)) for i, (t, s) in
               enumerate(zip(targets, seg_ids))]  # predict the next token of the same segment
    packed = {"decoder_input_tokens": [tokens], "decoder_segment_ids": [seg_ids], "decoder_positions": [positions],
              "decoder_target_tokens": [targets], "decoder_loss_weights": [weights]}
    alone, start = [], 0
    for n, s in zip(lengths, segs):
        pad = 16 - n
        alone.append({"decoder_input_tokens": [s + [0] * pad], "decoder_segment_ids": [[1] * n + [0] * pad],
                      "decoder_positions": [list(range(n)) + [0] * pad],
                      "decoder_target_tokens": [targets[start:start + n] + [0] * pad],
                      "decoder_loss_weights": [weights[start:start + n] + [0.0] * pad]})
        start += n
    as_jnp = lambda b: {k: jnp.asarray(v, jnp.float32 if "weights" in k else jnp.int32) for k, v in b.items()}  # noqa: E731
    return as_jnp(packed), [as_jnp(b) for b in alone]


@pytest.mark.slow
def test_decoder_packed_loss_and_gradients_equal_unpacked():
    packed, alone = _packed_and_alone()
    params = Decoder(SKIP).init(jax.random.PRNGKey(0), packed)["params"]

    def loss(cfg, p, batch):
        return cross_entropy_loss(Decoder(cfg).apply({"params": p}, batch), batch, z_loss=1e-4)[0]

    got, got_grads = jax.value_and_grad(lambda p: loss(SKIP, p, packed))(params)
    # reference: each segment alone in its own row, the plain whole-product attention
    want, want_grads = jax.value_and_grad(lambda p: sum(loss(PLAIN, p, b) for b in alone))(params)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for g, w in zip(jax.tree.leaves(got_grads), jax.tree.leaves(want_grads)):
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=1e-6)


def test_decoder_refuses_a_bad_block_size():
    with pytest.raises(ValueError, match="attention_block_size must be >= 1"):
        dataclasses.replace(SKIP, attention_block_size=0)


@pytest.mark.slow
def test_sharded_step_with_skipping_equals_one_device():
    from flan_jax.models import params_io
    from flan_jax.train import mesh as mesh_lib
    from flan_jax.train.optim import adafactor
    from flan_jax.train.state import create_state, state_shardings
    from flan_jax.train.step import jit_train_step, make_train_step, model_apply_fn

    packed, _ = _packed_and_alone()
    rng = np.random.default_rng(6)
    batch = {k: jnp.concatenate([v] * 8) for k, v in packed.items()}  # 8 rows, tokens varied per row
    batch["decoder_input_tokens"] = jnp.where(batch["decoder_segment_ids"] > 0,
                                              jnp.asarray(rng.integers(3, 64, (8, 16)), jnp.int32), 0)
    module, opt = params_io.build_model(SKIP), adafactor()

    def run(mesh):
        abstract, shardings = state_shardings(module, opt.tx, batch, mesh)
        state = create_state(module, opt.tx, batch, abstract, shardings, seed=0)
        step = jit_train_step(make_train_step(model_apply_fn(module), opt, num_microbatches=2, mesh=mesh),
                              mesh, shardings)
        state, metrics = step(state, batch)
        return jax.device_get(state.params), float(metrics["loss"])

    ref_params, ref_loss = run(mesh_lib.make_mesh((1, 1, 1), devices=jax.devices()[:1]))
    got_params, got_loss = run(mesh_lib.make_mesh((2, 2, 2)))
    np.testing.assert_allclose(got_loss, ref_loss, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(ref_params), jax.tree.leaves(got_params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
