"""LoRA against a dense reference: merged weights give the same logits and the same adapter
gradients; a zero B leaves the base unchanged; gradients reach adapters only."""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.errors import FlanJaxError
from flan_jax.models import lora
from flan_jax.models.decoder import Decoder, DecoderConfig
from flan_jax.models.sharding import logical_shardings
from flan_jax.models.t5 import T5, T5Config
from flan_jax.train.loss import cross_entropy_loss
from flan_jax.train.mesh import make_mesh
from flan_jax.train.synthetic import synthetic_batch

DEC = DecoderConfig(vocab_size=64, emb_dim=32, num_heads=4, num_kv_heads=2, head_dim=8, mlp_dim=48,
                    num_layers=2)
T5_TINY = T5Config(vocab_size=64, emb_dim=32, num_heads=4, head_dim=8, mlp_dim=48,
                   num_encoder_layers=2, num_decoder_layers=2, dropout_rate=0.0)
LENGTHS = {"inputs": 6, "targets": 5}


def _setup(family, config=lora.LoraConfig(targets=("heads", "kv_heads", "mlp"))):
    if family == "decoder":
        model, fmt = Decoder(DEC), "decoder"
    else:
        model, fmt = T5(T5_TINY), "enc_dec"
    batch = {k: jnp.asarray(v) for k, v in synthetic_batch(fmt, LENGTHS, 2, 64, 0).items()}
    params = nn.meta.unbox(model.init(jax.random.PRNGKey(0), batch)["params"])
    adapters = lora.init_adapters(model, batch, config, jax.random.PRNGKey(1))
    return model, batch, params, adapters, config


def _randomize_b(adapters, seed=2):
    keys = iter(jax.random.split(jax.random.PRNGKey(seed), len(adapters)))
    return {p: {"lora_a": ad["lora_a"], "lora_b": 0.1 * jax.random.normal(next(keys), ad["lora_b"].shape)}
            for p, ad in adapters.items()}


@pytest.mark.parametrize("family", ["decoder", "t5"])
def test_zero_b_leaves_the_base_unchanged(family):
    model, batch, params, adapters, config = _setup(family)
    base = model.apply({"params": params}, batch)
    np.testing.assert_array_equal(np.asarray(lora.apply(model, params, adapters, config, batch)), np.asarray(base))


@pytest.mark.parametrize("family", ["decoder", "t5"])
def test_adapted_logits_equal_the_merged_dense_model(family):
    model, batch, params, adapters, config = _setup(family)
    adapters = _randomize_b(adapters)
    got = lora.apply(model, params, adapters, config, batch)
    want = model.apply({"params": lora.merge(params, adapters, config)}, batch)
    assert float(jnp.max(jnp.abs(got - model.apply({"params": params}, batch)))) > 1e-3  # it changes
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["decoder", "t5"])
def test_gradients_reach_adapters_only_and_match_the_merged_reference(family):
    model, batch, params, adapters, config = _setup(family)
    adapters = _randomize_b(adapters)

    def loss_lora(base, ad):
        return cross_entropy_loss(lora.apply(model, base, ad, config, batch), batch)[0]

    def loss_merged(ad):
        return cross_entropy_loss(model.apply({"params": lora.merge(params, ad, config)}, batch), batch)[0]

    g_base, g_ad = jax.grad(loss_lora, argnums=(0, 1))(params, adapters)
    assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree.leaves(g_base))
    g_ref = jax.grad(loss_merged)(adapters)
    for path in adapters:
        for name in ("lora_a", "lora_b"):
            assert float(jnp.max(jnp.abs(g_ad[path][name]))) > 0
            np.testing.assert_allclose(np.asarray(g_ad[path][name]), np.asarray(g_ref[path][name]),
                                       atol=1e-5, rtol=1e-4)


def test_targets_select_by_logical_axis_or_name():
    model, batch, *_ = _setup("decoder")
    attn = lora.adapter_specs(model, batch, lora.LoraConfig())
    assert sorted(attn) == sorted(f"layers_{i}/attention/{n}" for i in range(2)
                                  for n in ("query", "key", "value", "out"))
    assert attn["layers_0/attention/query"] == ((32,), (4, 8), ("embed", "heads", "head_dim"))
    mlp = lora.adapter_specs(model, batch, lora.LoraConfig(targets=("mlp",)))
    assert sorted(p.rsplit("/", 1)[1] for p in mlp) == ["down", "down", "gate", "gate", "up", "up"]
    only_q = lora.adapter_specs(model, batch, lora.LoraConfig(targets=("query",)))
    assert sorted(only_q) == ["layers_0/attention/query", "layers_1/attention/query"]


def test_dropout_changes_the_branch_and_none_is_deterministic():
    cfg = lora.LoraConfig(dropout=0.5)
    model, batch, params, adapters, _ = _setup("decoder", cfg)
    adapters = _randomize_b(adapters)
    det = lora.apply(model, params, adapters, cfg, batch)
    d1 = lora.apply(model, params, adapters, cfg, batch, dropout_rng=jax.random.PRNGKey(5))
    d2 = lora.apply(model, params, adapters, cfg, batch, dropout_rng=jax.random.PRNGKey(5))
    np.testing.assert_array_equal(np.asarray(d1), np.asarray(d2))
    assert float(jnp.max(jnp.abs(d1 - det))) > 1e-4


def test_adapters_carry_logical_axes_and_shard_on_the_mesh():
    model, batch, *_ = _setup("decoder")
    boxed = lora.init_adapters(model, batch, lora.LoraConfig(), jax.random.PRNGKey(1), boxed=True)
    q = boxed["layers_0/attention/query"]
    assert q["lora_a"].names == ("embed", "lora_rank")
    assert q["lora_b"].names == ("lora_rank", "heads", "head_dim")
    mesh = make_mesh((1, 2, 4))  # data, fsdp, tensor
    shardings = logical_shardings(boxed, mesh)
    spec = shardings["layers_0/attention/query"]["lora_b"].spec
    assert tuple(spec) == (None, "tensor", None)


def test_bad_configs_are_refused():
    with pytest.raises(FlanJaxError, match="rank"):
        lora.LoraConfig(rank=0)
    with pytest.raises(FlanJaxError, match="dropout"):
        lora.LoraConfig(dropout=1.0)
    model, batch, *_ = _setup("decoder")
    with pytest.raises(FlanJaxError, match="no linear layer matches"):
        lora.adapter_specs(model, batch, lora.LoraConfig(targets=("nothing",)))
    scanned = Decoder(dataclasses.replace(DEC, scan_layers=True))
    with pytest.raises(FlanJaxError, match="scan_layers"):
        lora.adapter_specs(scanned, batch, lora.LoraConfig())
