"""The logical rules table, shardings of real parameter trees, sharded == single-device forward,
and parameter counts of the gin model files (via eval_shape, nothing allocated)."""
from pathlib import Path

import flax.linen as nn
import gin
import jax
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from flan_jax.models import sharding
from flan_jax.models.decoder import Decoder, DecoderConfig, dummy_batch

GIN_DIR = Path(__file__).resolve().parents[2] / "gin_configs" / "models"
TINY = DecoderConfig(vocab_size=128, emb_dim=32, num_heads=4, num_kv_heads=2, head_dim=8, mlp_dim=64, num_layers=2)


def _mesh(data, fsdp, tensor):
    devices = np.array(jax.devices()[: data * fsdp * tensor]).reshape(data, fsdp, tensor)
    return Mesh(devices, ("data", "fsdp", "tensor"))


@pytest.mark.parametrize(
    "names, want",
    [
        (("embed", "mlp"), P("fsdp", "tensor")),
        (("mlp", "embed"), P("tensor", "fsdp")),
        (("vocab", "embed"), P("tensor", "fsdp")),
        (("batch", "length", "embed"), P(("data", "fsdp"), None, None)),
        (("batch", "length", "heads", "head_dim"), P(("data", "fsdp"), None, "tensor", None)),
        (("layers", "embed", "kv_heads", "head_dim"), P(None, "fsdp", "tensor", None)),
    ],
)
def test_rules_table_hand_cases(names, want):
    assert sharding.logical_to_mesh_spec(names, _mesh(2, 2, 2)) == want


def test_rules_drop_mesh_axes_the_mesh_lacks():
    mesh = Mesh(np.array(jax.devices()), ("data",))
    assert sharding.logical_to_mesh_spec(("batch", "length", "embed"), mesh) == P("data", None, None)
    assert sharding.logical_to_mesh_spec(("embed", "mlp"), mesh) == P(None, None)


def test_param_shardings_follow_names_and_replicate_indivisible_dims():
    boxed = jax.eval_shape(Decoder(TINY).init, jax.random.PRNGKey(0), dummy_batch())["params"]
    shardings = sharding.logical_shardings(boxed, _mesh(2, 1, 4))
    layer = shardings["layers_0"]
    assert layer["mlp"]["gate"]["kernel"].spec == P("fsdp", "tensor")
    assert layer["attention"]["query"]["kernel"].spec == P("fsdp", "tensor", None)
    # 2 kv heads do not split 4 ways: that dimension is replicated instead of failing.
    assert layer["attention"]["key"]["kernel"].spec == P("fsdp", None, None)
    assert shardings["embed"]["embedding"].spec == P("tensor", "fsdp")
    assert layer["attention_norm"]["scale"].spec == P("fsdp")


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(2, 1, 4), (1, 8, 1), (2, 2, 2)])
def test_sharded_forward_equals_single_device(shape):
    cfg = TINY if shape != (2, 2, 2) else DecoderConfig(**{**TINY.__dict__, "scan_layers": True})
    model = Decoder(cfg)
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 128, size=(8, 16)).astype(np.int32)
    batch = {"decoder_input_tokens": tokens, "decoder_segment_ids": np.ones_like(tokens),
             "decoder_positions": np.broadcast_to(np.arange(16), (8, 16)).astype(np.int32)}
    boxed = model.init(jax.random.PRNGKey(0), dummy_batch())["params"]
    params = nn.meta.unbox(boxed)
    want = np.asarray(jax.jit(model.apply)({"params": params}, batch))

    mesh = _mesh(*shape)
    param_shardings = sharding.logical_shardings(boxed, mesh)
    batch_sharding = NamedSharding(mesh, P(("data", "fsdp"), None))
    placed = jax.device_put(params, param_shardings)
    placed_batch = jax.device_put(batch, batch_sharding)
    with jax.set_mesh(mesh), nn.logical_axis_rules(sharding.rules_for_mesh(mesh)):
        got = jax.jit(model.apply)({"params": placed}, placed_batch)
    assert len(jax.tree_util.tree_leaves(placed)[0].sharding.device_set) == 8
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5, rtol=1e-5)


def _llama_count(c: DecoderConfig) -> int:
    """Independent count from the Llama architecture formula."""
    attention = c.emb_dim * c.head_dim * (2 * c.num_heads + 2 * c.num_kv_heads)
    mlp = 3 * c.emb_dim * c.mlp_dim
    per_layer = attention + mlp + 2 * c.emb_dim
    tables = c.vocab_size * c.emb_dim * (1 if c.tie_embeddings else 2)
    return c.num_layers * per_layer + c.emb_dim + tables


def _gin_config(name: str) -> DecoderConfig:
    gin.clear_config()
    try:
        gin.parse_config_file(str(GIN_DIR / name))
        return DecoderConfig()
    finally:
        gin.clear_config()


def _eval_shape_count(cfg: DecoderConfig) -> int:
    abstract = jax.eval_shape(Decoder(cfg).init, jax.random.PRNGKey(0), dummy_batch())["params"]
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(nn.meta.unbox(abstract)))


def test_decoder_8b_gin_has_the_llama3_8b_parameter_count():
    cfg = _gin_config("decoder_8b.gin")
    assert (cfg.num_layers, cfg.emb_dim, cfg.num_kv_heads, cfg.mlp_dim) == (32, 4096, 8, 14336)
    assert _eval_shape_count(cfg) == 8_030_261_248


@pytest.mark.parametrize("name, published", [("decoder_tiny.gin", 229_696), ("decoder_125m.gin", 134_302_464),
                                             ("decoder_1b.gin", 1_235_814_400)])
def test_gin_model_files_parse_and_match_the_formula(name, published):
    cfg = _gin_config(name)
    assert _eval_shape_count(cfg) == _llama_count(cfg) == published
