"""The train step: k micro-batches equal one batch; sharded runs equal the 1-device run."""
import jax
import numpy as np
import optax
import pytest

from flan_jax.errors import FlanJaxError
from flan_jax.train import mesh as mesh_lib
from flan_jax.train.optim import Optimizer, adafactor
from flan_jax.train.state import create_state, state_shardings
from flan_jax.train.step import jit_train_step, make_train_step, model_apply_fn, split_microbatches
from train_tiny_model import TinyLM, random_batch


def run_steps(model, optimizer, mesh, batches, k=1, seed=0):
    abstract, shardings = state_shardings(model, optimizer.tx, batches[0], mesh)
    state = create_state(model, optimizer.tx, batches[0], abstract, shardings, seed=seed)
    step = jit_train_step(make_train_step(model_apply_fn(model), optimizer, num_microbatches=k, mesh=mesh),
                          mesh, shardings)
    metrics = []
    for b in batches:
        state, m = step(state, b)
        metrics.append(jax.device_get(m))
    return jax.device_get(state), metrics, shardings


def one_device():
    return mesh_lib.make_mesh((1, 1, 1), devices=jax.devices()[:1])


def sgd():
    return Optimizer(optax.sgd(1.0), optax.constant_schedule(1.0))


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def test_split_microbatches_interleaves_rows():
    got = split_microbatches({"x": np.arange(4)[:, None]}, 2)["x"]
    np.testing.assert_array_equal(np.asarray(got)[..., 0], [[0, 2], [1, 3]])


def test_accumulation_equals_one_batch():
    # plain SGD, so equal parameters after the step means equal gradients
    model, mesh = TinyLM(), one_device()
    batches = [random_batch(1, batch_size=8)]
    one, m1, _ = run_steps(model, sgd(), mesh, batches, k=1)
    four, m4, _ = run_steps(model, sgd(), mesh, batches, k=4)
    assert_trees_close(one.params, four.params)
    for key in ("loss", "accuracy", "target_tokens", "grad_norm"):
        np.testing.assert_allclose(m1[0][key], m4[0][key], rtol=1e-5)
    assert int(m1[0]["target_tokens"]) == int(batches[0]["decoder_loss_weights"].sum())


_REFERENCE = {}


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(2, 2, 2), (1, 8, 1)])
def test_sharded_step_equals_one_device(shape):
    model, opt = TinyLM(), adafactor()
    batches = [random_batch(4, batch_size=16), random_batch(5, batch_size=16)]
    if not _REFERENCE:  # the 1-device run, shared by both meshes
        _REFERENCE["ref"] = run_steps(model, opt, one_device(), batches, k=2)
    ref, mref, _ = _REFERENCE["ref"]
    mesh = mesh_lib.make_mesh(shape)
    got, mgot, shardings = run_steps(model, opt, mesh, batches, k=2)
    assert_trees_close(ref.params, got.params)
    np.testing.assert_allclose(mref[-1]["loss"], mgot[-1]["loss"], rtol=1e-5)
    w1 = shardings.params["w1"].spec  # parameters really are split: 'embed' on fsdp, 'mlp' on tensor
    assert w1 == jax.sharding.PartitionSpec("fsdp", "tensor")  # tensor has size 1 on (1, 8, 1)


def test_bf16_compute_keeps_f32_params_and_trains():
    model, mesh, opt = TinyLM(), one_device(), adafactor()
    b = random_batch(6, batch_size=8)
    abstract, sh = state_shardings(model, opt.tx, b, mesh)
    state = create_state(model, opt.tx, b, abstract, sh)
    import jax.numpy as jnp
    step = jit_train_step(make_train_step(model_apply_fn(model), opt, compute_dtype=jnp.bfloat16), mesh, sh)
    losses = []
    for _ in range(5):
        state, m = step(state, b)
        losses.append(float(m["loss"]))
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.params))
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("shape,devices,msg", [
    ((3, -1, 1), 8, "does not divide"),
    ((2, 2, 1), 8, "uses 4 devices"),
    ((-1, -1, 1), 8, "at most one"),
    ({"data": 2, "model": 4}, 8, "unknown axes"),
])
def test_bad_mesh_shape(shape, devices, msg):
    with pytest.raises(FlanJaxError, match=msg):
        mesh_lib.resolve_mesh_shape(shape, devices)


def test_batch_must_fit_mesh_and_microbatches():
    mesh = mesh_lib.make_mesh((2, 2, 2))
    mesh_lib.check_batch(mesh, 16, 2)
    with pytest.raises(FlanJaxError, match="not divisible by num_microbatches"):
        mesh_lib.check_batch(mesh, 16, 3)
    with pytest.raises(FlanJaxError, match="batch shards"):
        mesh_lib.check_batch(mesh, 8, 4)


# ---- the head at the loss positions only (loss_options.head_capacity, the train() default)

def tiny_decoder(vocab=97):
    from flan_jax.models.decoder import Decoder, DecoderConfig
    return Decoder(DecoderConfig(vocab_size=vocab, emb_dim=16, num_heads=2, num_kv_heads=2, head_dim=8,
                                 mlp_dim=24, num_layers=1))


def decoder_batch(seed, batch_size=8, length=32):
    b = random_batch(seed, batch_size=batch_size, length=length)
    b["decoder_loss_weights"][:, : length // 2] = 0  # loss on at most half the positions
    return b


@pytest.mark.slow
def test_positions_head_on_8_device_mesh_equals_full_logits_on_one_device():
    model, opt = tiny_decoder(), adafactor()
    batches = [decoder_batch(7, 16), decoder_batch(8, 16)]
    runs = []
    for mesh, capacity in ((one_device(), None), (mesh_lib.make_mesh((2, 2, 2)), 0.125)):
        abstract, shardings = state_shardings(model, opt.tx, batches[0], mesh)
        state = create_state(model, opt.tx, batches[0], abstract, shardings)
        loss_kwargs = {"z_loss": 1e-4, "label_smoothing": 0.1, "head_capacity": capacity}
        step = jit_train_step(make_train_step(model_apply_fn(model), opt, num_microbatches=2, mesh=mesh,
                                              loss_kwargs=loss_kwargs), mesh, shardings)
        metrics = []
        for b in batches:
            state, m = step(state, b)
            metrics.append(jax.device_get(m))
        runs.append((jax.device_get(state), metrics))
    (full, mfull), (pos, mpos) = runs
    assert_trees_close(full.params, pos.params)
    for key in ("loss", "z_loss", "accuracy", "grad_norm"):
        np.testing.assert_allclose(mpos[-1][key], mfull[-1][key], rtol=1e-5)


def test_train_default_computes_no_full_logits():
    from flan_jax.train.train_setup import loss_options

    model, opt, mesh = tiny_decoder(), sgd(), one_device()
    b = decoder_batch(9)
    abstract, shardings = state_shardings(model, opt.tx, b, mesh)
    assert model_apply_fn(model).returns_hidden and not model_apply_fn(TinyLM()).returns_hidden
    texts = {}
    for name, kwargs in (("default", loss_options()), ("full", dict(loss_options(), head_capacity=None))):
        step = jit_train_step(make_train_step(model_apply_fn(model), opt, loss_kwargs=kwargs, mesh=mesh),
                              mesh, shardings)
        state_in = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), abstract)
        texts[name] = step.jitted.lower(state_in, b).as_text()
    assert "8x32x97xf32" in texts["full"]  # the [B, L, V] logits
    assert "8x32x97xf32" not in texts["default"]
    assert "1x64x97xf32" in texts["default"]  # one group, a chunk of 0.25 x 256 positions
