"""Loss on hand-computed arrays: masked tokens add zero loss and zero gradient; the head at the
loss positions only equals the full logits."""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.errors import FlanJaxError
from flan_jax.models.layers import OutputHead, loss_positions_first
from flan_jax.train.loss import (
    cross_entropy_loss,
    head_chunk_size,
    head_cross_entropy_loss,
    segment_weights_per_sequence,
)

LOGITS = np.array([[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], np.float32)
BATCH = {"decoder_target_tokens": np.array([[1, 0, 0]], np.int32),
         "decoder_loss_weights": np.array([[1, 1, 0]], np.float32)}


@pytest.mark.parametrize("custom_vjp", [True, False])
def test_hand_computed_sum_and_aux(custom_vjp):
    loss, aux = cross_entropy_loss(jnp.asarray(LOGITS), BATCH, custom_vjp=custom_vjp)
    expected = math.log(3) + math.log(1 + 2 * math.exp(-2))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)
    assert float(aux["weight_sum"]) == 2.0 and float(aux["normalizer"]) == 2.0
    assert float(aux["correct"]) == 1.0
    assert float(aux["z_loss"]) == 0.0


@pytest.mark.parametrize("custom_vjp", [True, False])
def test_masked_position_has_zero_gradient_and_grad_matches_softmax(custom_vjp):
    grad = jax.grad(lambda x: cross_entropy_loss(x, BATCH, custom_vjp=custom_vjp)[0])(
        jnp.asarray(LOGITS))
    np.testing.assert_array_equal(np.asarray(grad[0, 2]), np.zeros(3))
    # d/dlogits of (lse - logit_t) = softmax - onehot(t), computed by hand.
    np.testing.assert_allclose(np.asarray(grad[0, 0]), [1 / 3, 1 / 3 - 1, 1 / 3], rtol=1e-6)
    e = math.exp(2)
    p = np.array([e, 1, 1]) / (e + 2)
    np.testing.assert_allclose(np.asarray(grad[0, 1]), p - [1, 0, 0], rtol=1e-6)


def test_masked_garbage_logits_do_not_leak():
    logits = LOGITS.copy()
    logits[0, 2] = [1e30, -1e30, 7.0]
    clean, _ = cross_entropy_loss(jnp.asarray(LOGITS), BATCH)
    dirty, _ = cross_entropy_loss(jnp.asarray(logits), BATCH)
    assert float(clean) == float(dirty)


def test_z_loss_and_label_smoothing_by_hand():
    # one token, vocab 2, logits [1, 0], target 0
    batch = {"decoder_target_tokens": np.array([[0]]), "decoder_loss_weights": np.array([[1.0]])}
    logits = jnp.array([[[1.0, 0.0]]])
    lse = math.log(math.e + 1)
    loss, aux = cross_entropy_loss(logits, batch, z_loss=1e-2)
    np.testing.assert_allclose(float(loss), (lse - 1) + 1e-2 * lse**2, rtol=1e-6)
    np.testing.assert_allclose(float(aux["z_loss"]), 1e-2 * lse**2, rtol=1e-6)
    # label smoothing 0.2 with vocab 2: soft target [0.8, 0.2], minus its entropy.
    ls = 0.2
    ent = -(0.8 * math.log(0.8) + 0.2 * math.log(0.2))
    want = -(0.8 * (1 - lse) + 0.2 * (0 - lse)) - ent
    for custom in (True, False):
        loss, _ = cross_entropy_loss(logits, batch, label_smoothing=ls, custom_vjp=custom)
        np.testing.assert_allclose(float(loss), want, rtol=1e-5)


def test_custom_vjp_gradient_equals_autodiff_with_all_options():
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(2, 5, 11)).astype(np.float32))
    batch = {"decoder_target_tokens": rng.integers(0, 11, size=(2, 5)),
             "decoder_loss_weights": (rng.random((2, 5)) > 0.3).astype(np.float32)}

    def f(x, custom):
        return cross_entropy_loss(x, batch, z_loss=1e-3, label_smoothing=0.1, custom_vjp=custom)[0]

    np.testing.assert_allclose(f(logits, True), f(logits, False), rtol=1e-5)
    np.testing.assert_allclose(jax.grad(f)(logits, True), jax.grad(f)(logits, False),
                               rtol=1e-5, atol=1e-7)


def test_per_sequence_weights_by_hand():
    w = jnp.array([[1.0, 1.0, 0.0, 1.0, 0.0]])
    seg = jnp.array([[1, 1, 2, 2, 0]])
    np.testing.assert_allclose(segment_weights_per_sequence(w, seg), [[0.5, 0.5, 0, 1, 0]])
    np.testing.assert_allclose(segment_weights_per_sequence(w, None), [[1 / 3, 1 / 3, 0, 1 / 3, 0]])
    batch = {"decoder_target_tokens": np.zeros((1, 5), np.int32), "decoder_loss_weights": w,
             "decoder_segment_ids": seg}
    _, aux = cross_entropy_loss(jnp.zeros((1, 5, 4)), batch, normalization="sequences")
    np.testing.assert_allclose(float(aux["normalizer"]), 2.0)
    assert float(aux["weight_sum"]) == 3.0


def test_bad_input():
    with pytest.raises(FlanJaxError, match="normalization"):
        cross_entropy_loss(jnp.asarray(LOGITS), BATCH, normalization="rows")
    with pytest.raises(FlanJaxError, match="decoder_loss_weights"):
        cross_entropy_loss(jnp.asarray(LOGITS), {"decoder_target_tokens": BATCH["decoder_target_tokens"]})


def test_sums_over_halves_equal_the_whole_batch_for_both_normalizations():
    # what the step relies on: loss sums and normalizers add over micro-batches
    rng = np.random.default_rng(1)
    logits = jnp.asarray(rng.normal(size=(4, 6, 7)).astype(np.float32))
    batch = {"decoder_target_tokens": rng.integers(0, 7, size=(4, 6)),
             "decoder_loss_weights": (rng.random((4, 6)) > 0.4).astype(np.float32),
             "decoder_segment_ids": np.array([[1, 1, 1, 2, 2, 0]] * 4)}
    for norm in ("tokens", "sequences"):
        whole, aux = cross_entropy_loss(logits, batch, normalization=norm)
        parts = [cross_entropy_loss(logits[s], {k: v[s] for k, v in batch.items()}, normalization=norm)
                 for s in (slice(0, 2), slice(2, 4))]
        np.testing.assert_allclose(sum(p[0] for p in parts), whole, rtol=1e-6)
        np.testing.assert_allclose(sum(p[1]["normalizer"] for p in parts), aux["normalizer"], rtol=1e-6)


# ---- label smoothing under jit (the constant must not be a Python float of a traced value)

def test_label_smoothing_jitted_equals_eager_and_t5x_constant():
    logits = jnp.zeros((1, 3, 5))
    batch = {"decoder_target_tokens": np.array([[2, 3, 0]], np.int32),
             "decoder_loss_weights": np.array([[1, 1, 0]], np.float32)}
    # t5x/losses.py compute_weighted_cross_entropy: normalizing_constant =
    # -(on log on + (V-1) off log(off + 1e-20)), on = 0.9, off = 0.1 / 4; all-zero logits: log 5 each.
    on, off = 0.9, 0.1 / 4
    constant = -(on * math.log(on) + 4 * off * math.log(off + 1e-20))
    want_sum = 2 * (math.log(5) - constant)  # two weighted tokens
    np.testing.assert_allclose(want_sum, 2.291451, atol=1e-6)
    for custom in (False, True):
        def f(x):
            return cross_entropy_loss(x, batch, label_smoothing=0.1, custom_vjp=custom)

        eager, aux = f(logits)
        jitted, _ = jax.jit(f)(logits)
        np.testing.assert_allclose(float(eager), want_sum, rtol=1e-6)
        np.testing.assert_allclose(float(jitted), float(eager), rtol=1e-6)
        np.testing.assert_allclose(float(eager) / float(aux["normalizer"]), 1.145726, atol=1e-6)
    # a traced smoothing value works too
    traced = jax.jit(lambda s: cross_entropy_loss(logits, batch, label_smoothing=s)[0])(0.1)
    np.testing.assert_allclose(float(traced), want_sum, rtol=1e-6)


# ---- the head at the loss positions only equals the full logits

def _head_case(seed, rows=4, length=24, emb=6, vocab=13, density=0.3, tied=False):
    rng = np.random.default_rng(seed)
    hidden = jnp.asarray(rng.normal(size=(rows, length, emb)).astype(np.float32))
    shape = (vocab, emb) if tied else (emb, vocab)
    kernel = jnp.asarray(rng.normal(size=shape).astype(np.float32))
    head = OutputHead(kernel, transposed=tied, input_scale=emb ** -0.5 if tied else 1.0)
    weights = (rng.random((rows, length)) < density).astype(np.float32)
    targets = rng.integers(0, vocab, size=(rows, length)).astype(np.int32)
    # make some predictions right so `correct` is not trivially 0
    best = np.asarray(jnp.argmax(head(hidden), axis=-1))
    targets = np.where(rng.random((rows, length)) < 0.3, best, targets).astype(np.int32)
    segments = np.repeat(np.array([[1] * (length // 2) + [2] * (length - length // 2)]), rows, 0)
    batch = {"decoder_target_tokens": targets, "decoder_loss_weights": weights,
             "decoder_segment_ids": segments.astype(np.int32)}
    return hidden, head, batch


def _full_and_positions(hidden, head, batch, capacity, groups=1, **kw):
    def full(h, k):
        return cross_entropy_loss(dataclasses.replace(head, kernel=k)(h), batch, **kw)

    def positions(h, k):
        return head_cross_entropy_loss(h, dataclasses.replace(head, kernel=k), batch,
                                       capacity=capacity, groups=groups, **kw)

    grad = lambda f: jax.jit(jax.value_and_grad(f, argnums=(0, 1), has_aux=True))  # noqa: E731
    return grad(full)(hidden, head.kernel), grad(positions)(hidden, head.kernel)


@pytest.mark.slow
@pytest.mark.parametrize("capacity,groups,density", [
    (1.0, 1, 0.3),    # one chunk, no sort
    (0.5, 2, 0.3),    # all loss positions in the first chunk
    (0.1, 1, 0.3),    # loss positions overflow into later chunks
    (0.1, 4, 1.0),    # every position carries loss: 3 of the chunks of 8 per group overflow
])
@pytest.mark.parametrize("tied", [False, True])
def test_head_at_positions_equals_full_logits(capacity, groups, density, tied):
    hidden, head, batch = _head_case(3, density=density, tied=tied)
    kw = dict(z_loss=1e-3, label_smoothing=0.1)
    ((lf, af), gf), ((lp, ap), gp) = _full_and_positions(hidden, head, batch, capacity, groups, **kw)
    np.testing.assert_allclose(lp, lf, rtol=1e-5)
    for key in af:
        np.testing.assert_allclose(ap[key], af[key], rtol=1e-5, err_msg=key)
    assert float(af["correct"]) > 0
    for a, b in zip(gf, gp):  # d/d hidden (zero at non-loss positions) and d/d kernel
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("normalization,custom_vjp", [("sequences", False), ("tokens", True)])
def test_head_at_positions_equals_full_logits_other_options(normalization, custom_vjp):
    hidden, head, batch = _head_case(4)
    kw = dict(z_loss=1e-4, label_smoothing=0.05, normalization=normalization, custom_vjp=custom_vjp)
    ((lf, af), gf), ((lp, ap), gp) = _full_and_positions(hidden, head, batch, 0.1, 2, **kw)
    np.testing.assert_allclose(lp, lf, rtol=1e-5)
    np.testing.assert_allclose(ap["normalizer"], af["normalizer"], rtol=1e-6)
    for a, b in zip(gf, gp):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_loss_positions_first_and_chunk_size_by_hand():
    order = loss_positions_first(jnp.array([[0, 1, 0, 1, 1]], bool))
    np.testing.assert_array_equal(order, [[1, 3, 4, 0, 2]])
    assert head_chunk_size(4096, 0.25) == 1024
    assert head_chunk_size(24, 0.25) == 8
    assert head_chunk_size(24, 1.0) == 24
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(FlanJaxError, match="head_capacity"):
            head_chunk_size(24, bad)
