"""T5 model behaviour: buckets vs HF, packing, cached decoding, sharding, sizes, gin files."""
import dataclasses
from pathlib import Path

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from flan_jax.errors import FlanJaxError
from flan_jax.models.hf_t5 import stack_layers
from flan_jax.models.sharding import logical_shardings, rules_for_mesh
from flan_jax.models.t5 import T5, T5Config, dummy_batch
from flan_jax.models.t5_layers import relative_position_bucket

GIN_DIR = Path(__file__).resolve().parents[2] / "gin_configs" / "models"

# Small relative-position settings so that ~12-token segments reach the log-spaced buckets.
TINY = T5Config(vocab_size=128, emb_dim=64, num_heads=4, head_dim=16, mlp_dim=128,
                num_encoder_layers=2, num_decoder_layers=2, relative_attention_num_buckets=8,
                relative_attention_max_distance=12)


def _init(config, batch=None):
    params = jax.jit(T5(config).init)(jax.random.PRNGKey(0), batch or dummy_batch())["params"]
    return nn.meta.unbox(params)


@pytest.fixture(scope="module")
def tiny_params():
    return _init(TINY)


def _tokens(rng, length, low=2):
    return rng.integers(low, TINY.vocab_size, length).astype(np.int32)


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("num_buckets,max_distance", [(32, 128), (8, 20), (16, 64)])
def test_relative_position_bucket_matches_transformers(bidirectional, num_buckets, max_distance):
    torch = pytest.importorskip("torch")
    from transformers.models.t5.modeling_t5 import T5Attention

    relative = np.arange(-400, 401)
    ref = T5Attention._relative_position_bucket(
        torch.tensor(relative), bidirectional=bidirectional, num_buckets=num_buckets,
        max_distance=max_distance).numpy()
    ours = relative_position_bucket(jnp.asarray(relative), bidirectional=bidirectional,
                                    num_buckets=num_buckets, max_distance=max_distance)
    np.testing.assert_array_equal(np.asarray(ours), ref)


def test_every_parameter_has_logical_axes():
    boxed = jax.eval_shape(lambda: T5(TINY).init(jax.random.PRNGKey(0), dummy_batch()))["params"]
    leaves = jax.tree_util.tree_leaves_with_path(boxed, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
    for path, leaf in leaves:
        assert isinstance(leaf, nn.LogicallyPartitioned), jax.tree_util.keystr(path)
        assert len(leaf.names) == leaf.value.ndim, jax.tree_util.keystr(path)


@pytest.mark.slow
def test_packed_equals_each_example_alone(tiny_params):
    """Two examples packed in one row (plus padding) give the logits each gives alone."""
    rng = np.random.default_rng(1)
    enc = [_tokens(rng, 13), _tokens(rng, 9)]
    dec = [_tokens(rng, 11), _tokens(rng, 7)]
    for d in dec:
        d[0] = 0  # BOS at each segment start
    apply = jax.jit(T5(TINY).apply)

    def packed_field(parts, pad):
        tokens = np.concatenate(parts + [np.zeros(pad, np.int32)])
        segments = np.concatenate([np.full(len(p), i + 1) for i, p in enumerate(parts)] + [np.zeros(pad)])
        positions = np.concatenate([np.arange(len(p)) for p in parts] + [np.zeros(pad)])
        return [jnp.asarray(a[None], jnp.int32) for a in (tokens, segments, positions)]

    et, es, ep = packed_field(enc, 3)
    dt, ds, dp = packed_field(dec, 2)
    packed = apply({"params": tiny_params}, {
        "encoder_input_tokens": et, "encoder_segment_ids": es, "encoder_positions": ep,
        "decoder_input_tokens": dt, "decoder_segment_ids": ds, "decoder_positions": dp})
    start = 0
    for e, d in zip(enc, dec):
        alone = apply({"params": tiny_params}, {
            "encoder_input_tokens": jnp.asarray(e[None]), "decoder_input_tokens": jnp.asarray(d[None])})
        np.testing.assert_allclose(packed[0, start:start + len(d)], alone[0], atol=1e-5)
        start += len(d)


@pytest.mark.parametrize("scan", [False, True])
@pytest.mark.slow
def test_cached_decode_equals_full_forward(tiny_params, scan):
    rng = np.random.default_rng(2)
    enc = np.stack([_tokens(rng, 10), _tokens(rng, 10)])
    enc[1, 6:] = 0  # padded second row
    dec = np.stack([_tokens(rng, 8), _tokens(rng, 8)])
    dec[:, 0] = 0
    config = dataclasses.replace(TINY, scan_layers=True) if scan else TINY
    params = stack_layers(tiny_params, TINY) if scan else tiny_params
    model, variables = T5(config), {"params": params}
    full = jax.jit(model.apply)(variables, {"encoder_input_tokens": jnp.asarray(enc), "decoder_input_tokens": jnp.asarray(dec)})
    encoded = model.apply(variables, jnp.asarray(enc), method=T5.encode)
    cache = model.apply(variables, encoded, jnp.asarray(enc != 0, jnp.int32), 12, method=T5.init_decode_cache)
    step = jax.jit(lambda tokens, cache: model.apply(variables, tokens, cache, method=T5.decode_step))
    for t in range(dec.shape[1]):
        logits, cache = step(jnp.asarray(dec[:, t:t + 1]), cache)
        np.testing.assert_allclose(logits[:, 0], full[:, t], atol=1e-5, err_msg=f"step {t}")
    assert int(cache["index"]) == dec.shape[1]


@pytest.mark.slow
def test_scan_and_remat_equal_unrolled(tiny_params):
    """Same logits and gradients with scanned layers + remat as with the plain unrolled stack."""
    batch = dummy_batch(2, 9, 7)
    batch["encoder_input_tokens"] = jnp.asarray(np.random.default_rng(3).integers(1, 128, (2, 9)), jnp.int32)
    weights = jnp.asarray(np.random.default_rng(4).normal(size=(2, 7, 128)), jnp.float32)

    def loss_and_grad(config, params):
        def loss(p):
            return jnp.sum(T5(config).apply({"params": p}, batch) * weights)
        return jax.jit(jax.value_and_grad(loss))(params)

    ref_loss, ref_grad = loss_and_grad(TINY, tiny_params)
    loss, grad = loss_and_grad(dataclasses.replace(TINY, scan_layers=True, remat="dots"),
                               stack_layers(tiny_params, TINY))
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    flat_ref = dict(jax.tree_util.tree_leaves_with_path(stack_layers(ref_grad, TINY)))
    for path, g in jax.tree_util.tree_leaves_with_path(grad):
        np.testing.assert_allclose(g, flat_ref[path], atol=1e-4, rtol=1e-4, err_msg=jax.tree_util.keystr(path))
    init_scanned = _init(dataclasses.replace(TINY, scan_layers=True))
    assert init_scanned["encoder"]["layers"]["mlp"]["wo"]["kernel"].shape == (2, 128, 64)


def test_bfloat16_compute_stays_close_to_float32(tiny_params):
    batch = dummy_batch(2, 9, 7)
    batch["encoder_input_tokens"] = jnp.asarray(np.random.default_rng(5).integers(1, 128, (2, 9)), jnp.int32)
    ref = jax.jit(T5(TINY).apply)({"params": tiny_params}, batch)
    low = jax.jit(T5(dataclasses.replace(TINY, dtype="bfloat16")).apply)({"params": tiny_params}, batch)
    assert low.dtype == jnp.float32  # logits are float32 whatever the compute dtype
    assert 0 < float(jnp.abs(low - ref).max()) < 0.05 * float(jnp.abs(ref).max())


def test_bad_config_values():
    with pytest.raises(FlanJaxError, match="mlp_activations.*swiglu"):
        T5Config(mlp_activations=("swiglu",))
    with pytest.raises(FlanJaxError, match="remat.*sometimes"):
        T5Config(remat="sometimes")
    assert T5Config(remat=True).remat == "full"


def test_dropout_only_when_enabled(tiny_params):
    config = dataclasses.replace(TINY, dropout_rate=0.5)
    batch = dummy_batch(1, 6, 5)
    apply = jax.jit(T5(config).apply, static_argnames="enable_dropout")
    off = apply({"params": tiny_params}, batch)
    np.testing.assert_array_equal(off, jax.jit(T5(TINY).apply)({"params": tiny_params}, batch))
    on = apply({"params": tiny_params}, batch, enable_dropout=True, rngs={"dropout": jax.random.PRNGKey(1)})
    assert np.abs(np.asarray(on) - np.asarray(off)).max() > 1e-3


@pytest.mark.parametrize("mesh_shape", [(2, 1, 4), (1, 8, 1), (2, 4, 1)])
def test_sharded_forward_equals_single_device(tiny_params, mesh_shape):
    rng = np.random.default_rng(4)
    batch = dummy_batch(8, 12, 10)
    batch["encoder_input_tokens"] = jnp.asarray(rng.integers(0, 128, (8, 12)), jnp.int32)
    batch["decoder_input_tokens"] = jnp.asarray(rng.integers(0, 128, (8, 10)), jnp.int32)
    model = T5(TINY)
    ref = jax.jit(model.apply)({"params": tiny_params}, batch)
    mesh = Mesh(np.asarray(jax.devices()).reshape(mesh_shape), ("data", "fsdp", "tensor"))
    boxed = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), batch))["params"]
    param_shardings = logical_shardings(boxed, mesh)
    params = jax.device_put(tiny_params, param_shardings)
    batch = jax.device_put(batch, NamedSharding(mesh, PartitionSpec(("data", "fsdp"))))
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules_for_mesh(mesh)):
        out = jax.jit(lambda p, b: model.apply({"params": p}, b))(params, batch)
    if mesh_shape[2] > 1:  # the tensor axis really splits something
        kernel = params["decoder"]["layers_0"]["mlp"]["wi_0"]["kernel"]
        assert kernel.sharding.spec[1] == "tensor"
    np.testing.assert_allclose(out, ref, atol=1e-5)


def _count_hf_params(hf_config, tie):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    model = transformers.T5ForConditionalGeneration(hf_config)
    if not tie:  # transformers 5 starts every T5 head tied; v1.1 checkpoints have their own
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    return model.num_parameters()


@pytest.mark.parametrize("proj,tie", [("gated-gelu", False), ("relu", True)])
def test_parameter_count_matches_transformers(proj, tie):
    transformers = pytest.importorskip("transformers")
    hf = transformers.T5Config(vocab_size=96, d_model=24, d_kv=5, d_ff=40, num_layers=3,
                               num_decoder_layers=2, num_heads=3, feed_forward_proj=proj,
                               tie_word_embeddings=tie, relative_attention_num_buckets=10)
    ours = T5Config(vocab_size=96, emb_dim=24, head_dim=5, mlp_dim=40, num_encoder_layers=3,
                    num_decoder_layers=2, num_heads=3, relative_attention_num_buckets=10,
                    mlp_activations=("gelu", "linear") if proj == "gated-gelu" else ("relu",),
                    tie_embeddings=tie)
    assert _count(ours) == _count_hf_params(hf, tie)


def _count(config):
    shapes = jax.eval_shape(lambda: T5(config).init(jax.random.PRNGKey(0), dummy_batch()))
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(nn.meta.unbox(shapes)))


# Published sizes of T5 v1.1 (the model cards' rounded figures).
PUBLISHED = {"small": 77e6, "base": 248e6, "large": 783e6, "xl": 2.85e9, "xxl": 11.1e9}


@pytest.mark.parametrize("size", sorted(PUBLISHED))
def test_gin_configs_have_published_sizes(size):
    gin.clear_config()
    try:
        gin.parse_config_file(str(GIN_DIR / f"t5_1_1_{size}.gin"))
        config = T5Config()
    finally:
        gin.clear_config()
    assert config.vocab_size == 32128 and config.head_dim == 64
    assert abs(_count(config) / PUBLISHED[size] - 1) < 0.01


@pytest.mark.slow
def test_tiny_gin_config_builds_and_runs():
    gin.clear_config()
    try:
        gin.parse_config_file(str(GIN_DIR / "t5_1_1_tiny.gin"))
        config = T5Config()
    finally:
        gin.clear_config()
    assert config.emb_dim == 64 and config.mlp_activations == ("gelu", "linear")
    params = _init(config)
    assert sum(x.size for x in jax.tree_util.tree_leaves(params)) == (
        2 * 1024 * 64                                  # embedding + untied head
        + 2 * (4 * 64 * 64 + 3 * 64 * 128 + 2 * 64)    # encoder layers
        + 2 * (8 * 64 * 64 + 3 * 64 * 128 + 3 * 64)    # decoder layers
        + 2 * (64 + 32 * 4))                           # final norms, relative bias tables
    logits = jax.jit(T5(config).apply)({"params": params}, dummy_batch(1, 5, 4))
    assert logits.shape == (1, 4, 1024) and logits.dtype == jnp.float32
    assert np.isfinite(np.asarray(logits)).all()
