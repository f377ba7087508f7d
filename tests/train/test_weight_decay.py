"""AdamW weight decay mask: norm scales, biases and embeddings are not decayed by default.

The reference is the decoupled update written by hand (Loshchilov & Hutter 2019, "Decoupled
Weight Decay Regularization", Algorithm 2): with a zero gradient Adam's step is 0, so a decayed
parameter moves by exactly -lr * wd * p and an undecayed one does not move at all.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.errors import FlanJaxError
from flan_jax.train import optim

LR, WD = 0.1, 0.5


def _params():
    return {
        "embed": {"embedding": jnp.full((4, 3), 2.0)},
        "layers_0": {
            "attention_norm": {"scale": jnp.full((3,), 2.0)},
            "attention": {"query": {"kernel": jnp.full((3, 3), 2.0)}},
            "mlp": {"wi": {"kernel": jnp.full((3, 5), 2.0), "bias": jnp.full((5,), 2.0)}},
        },
        "relpos_bias": {"rel_embedding": jnp.full((2, 8), 2.0)},
        "final_norm": {"scale": jnp.full((3,), 2.0)},
        "lm_head": {"kernel": jnp.full((3, 4), 2.0)},
    }


def _one_zero_gradient_step(opt):
    params = _params()
    grads = jax.tree.map(jnp.zeros_like, params)
    updates, _ = opt.tx.update(grads, opt.tx.init(params), params)
    return jax.tree.map(lambda p, u: p + u, params, updates)


DECAYED = 2.0 * (1 - LR * WD)  # p - lr * wd * p, by hand


def test_default_mask_leaves_norms_biases_embeddings_alone():
    new = _one_zero_gradient_step(optim.adamw(LR, weight_decay=WD, max_grad_norm=None))
    # a norm scale (and every other excluded leaf) with zero gradient does not move
    for path in (("final_norm", "scale"), ("layers_0", "attention_norm", "scale"),
                 ("layers_0", "mlp", "wi", "bias"), ("embed", "embedding"),
                 ("relpos_bias", "rel_embedding")):
        leaf = new
        for key in path:
            leaf = leaf[key]
        np.testing.assert_array_equal(leaf, 2.0, err_msg="/".join(path))
    # matrices are decayed by exactly lr * wd * p
    np.testing.assert_allclose(new["layers_0"]["attention"]["query"]["kernel"], DECAYED, rtol=1e-6)
    np.testing.assert_allclose(new["layers_0"]["mlp"]["wi"]["kernel"], DECAYED, rtol=1e-6)
    np.testing.assert_allclose(new["lm_head"]["kernel"], DECAYED, rtol=1e-6)


def test_all_keeps_the_old_behaviour():
    new = _one_zero_gradient_step(optim.adamw(LR, weight_decay=WD, max_grad_norm=None,
                                              weight_decay_mask="all"))
    for leaf in jax.tree.leaves(new):
        np.testing.assert_allclose(leaf, DECAYED, rtol=1e-6)


def test_patterns_name_the_excluded_paths():
    new = _one_zero_gradient_step(optim.adamw(LR, weight_decay=WD, max_grad_norm=None,
                                              weight_decay_mask=["lm_head/"]))
    np.testing.assert_array_equal(new["lm_head"]["kernel"], 2.0)
    np.testing.assert_allclose(new["final_norm"]["scale"], DECAYED, rtol=1e-6)


def test_mask_table_by_hand():
    mask = optim.decay_mask(_params(), "standard")
    flat = {"/".join(str(k.key) for k in path): v
            for path, v in jax.tree_util.tree_flatten_with_path(mask)[0]}
    assert flat == {
        "embed/embedding": False, "layers_0/attention_norm/scale": False,
        "layers_0/attention/query/kernel": True, "layers_0/mlp/wi/kernel": True,
        "layers_0/mlp/wi/bias": False, "relpos_bias/rel_embedding": False,
        "final_norm/scale": False, "lm_head/kernel": True,
    }


@pytest.mark.slow  # optax.adafactor's update runs op by op: ~10 s on a loaded 2-core machine
def test_adafactor_decay_uses_the_same_mask():
    new = _one_zero_gradient_step(optim.adafactor(LR, weight_decay=WD))
    np.testing.assert_array_equal(new["final_norm"]["scale"], 2.0)


def test_gin_binds_the_mask():
    import gin

    with gin.unlock_config():
        gin.parse_config("adamw.weight_decay_mask = 'all'")
    try:
        opt = optim.adamw(LR, weight_decay=WD, max_grad_norm=None)
    finally:
        gin.clear_config()
    new = _one_zero_gradient_step(opt)
    np.testing.assert_allclose(new["final_norm"]["scale"], DECAYED, rtol=1e-6)


@pytest.mark.parametrize("bad", ["norms", 3, ["("]])
def test_bad_mask_is_one_error(bad):
    with pytest.raises(FlanJaxError, match="weight_decay_mask"):
        optim.adamw(LR, weight_decay=WD, weight_decay_mask=bad)
