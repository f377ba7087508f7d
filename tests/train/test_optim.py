"""Schedules against hand-computed values; Adafactor keeps T5's fine-tuning defaults."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.errors import FlanJaxError
from flan_jax.train.optim import adafactor, adamw, lr_schedule


def values(schedule, steps):
    return [float(schedule(jnp.asarray(s))) for s in steps]


def test_schedules_by_hand():
    np.testing.assert_allclose(values(lr_schedule("constant", 1e-3), [0, 5, 1000]), [1e-3] * 3, rtol=1e-6)
    np.testing.assert_allclose(values(lr_schedule("constant", 1.0, warmup_steps=4), [0, 2, 4, 9]),
                               [0, 0.5, 1, 1], rtol=1e-6)
    # rsqrt: peak * sqrt(warmup / step) after warmup
    np.testing.assert_allclose(values(lr_schedule("rsqrt", 1.0, warmup_steps=4), [2, 4, 16, 64]),
                               [0.5, 1, 0.5, 0.25], rtol=1e-6)
    cos = lr_schedule("cosine", 1.0, warmup_steps=2, decay_steps=10, end_value=0.1)
    np.testing.assert_allclose(values(cos, [1, 2, 7, 12, 50]),
                               [0.5, 1.0, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)), 0.1, 0.1], rtol=1e-5)
    lin = lr_schedule("linear", 1.0, decay_steps=4, end_value=0.0)
    np.testing.assert_allclose(values(lin, [0, 1, 4, 8]), [1, 0.75, 0, 0], rtol=1e-6)


def test_bad_schedules():
    with pytest.raises(FlanJaxError, match="kind"):
        lr_schedule("exponential")
    with pytest.raises(FlanJaxError, match="decay_steps"):
        lr_schedule("cosine")


def test_adafactor_defaults_are_t5_finetuning():
    opt = adafactor()
    params = {"w": jnp.ones((128, 256)), "b": jnp.ones((256,))}
    state = opt.tx.init(params)
    factored = state[0]  # optax.adafactor: scale_by_factored_rms state first
    assert factored.v_row["w"].shape == (128,) and factored.v_col["w"].shape == (256,)
    assert float(opt.learning_rate(jnp.asarray(12345))) == pytest.approx(1e-3)
    # no first moment is kept anywhere (momentum None): state size ~ rows + cols, not 128 x 256
    n = sum(np.size(x) for x in __import__("jax").tree.leaves(state))
    assert n < 128 * 256


def test_global_norm_clipping_comes_before_the_optimizer():
    import optax

    from flan_jax.train.optim import _with_clipping

    tx = _with_clipping(optax.sgd(1.0), 1.0)
    grads = {"w": jnp.array([30.0, 40.0])}
    updates, _ = tx.update(grads, tx.init(grads))
    np.testing.assert_allclose(updates["w"], [-0.6, -0.8], rtol=1e-6)  # norm 50 -> 1, then -lr
    assert _with_clipping(optax.sgd(1.0), None) is not tx
    assert len(adamw(max_grad_norm=1.0).tx.init(grads)) == 2  # (clip, adamw) chain
