"""train(lora=...): only adapters train and are in the optimizer state, the base stays as it was,
resume is exact, the saved adapters merged into the base give the trained model's logits."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.models import lora, params_io
from flan_jax.models.decoder import DecoderConfig
from flan_jax.models.t5 import T5Config
from flan_jax.train import lora_training
from flan_jax.train.optim import adamw
from flan_jax.train.synthetic import synthetic_batch
from flan_jax.train.train import train

DEC = DecoderConfig(vocab_size=64, emb_dim=16, num_heads=4, num_kv_heads=2, head_dim=8, mlp_dim=32, num_layers=2)
T5_TINY = T5Config(vocab_size=64, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32,
                   num_encoder_layers=1, num_decoder_layers=1)
LENGTHS = {"inputs": 8, "targets": 8}
CFG = lora.LoraConfig(rank=4, alpha=8.0, targets=("heads", "kv_heads", "mlp"))


def _pretrained(tmp_path, config, steps=2):
    r = train(model=config, mixture="synthetic", feature_lengths=LENGTHS, batch_size=8, num_steps=steps,
              model_dir=str(tmp_path / "pre_run"), optimizer=adamw(1e-2, weight_decay=0.0))
    params_io.save_checkpoint(tmp_path / "pre", config, jax.device_get(r.state.params))
    return str(tmp_path / "pre")


def _run(tmp_path, name, steps, pretrained, **kw):
    return train(mixture="synthetic", feature_lengths=LENGTHS, batch_size=8, num_steps=steps,
                 model_dir=str(tmp_path / name), pretrained=pretrained, lora=CFG, checkpoint_every=2,
                 optimizer=adamw(1e-2, weight_decay=0.0), **kw)


@pytest.mark.slow
@pytest.mark.parametrize("config", [DEC, T5_TINY], ids=["decoder", "t5"])
def test_only_adapters_train_and_resume_is_exact(tmp_path, config):
    pre = _pretrained(tmp_path, config)
    _, base = params_io.load_checkpoint(pre)
    whole = _run(tmp_path, "whole", 4, pre, mesh_shape=(2, 2, 2))
    # the base is untouched; the adapters (and only they) have optimizer state
    for a, b in zip(jax.tree.leaves(jax.device_get(whole.state.frozen)), jax.tree.leaves(base)):
        np.testing.assert_array_equal(a, b)
    adapter_size = sum(x.size for x in jax.tree.leaves(whole.state.params))
    opt_size = sum(x.size for x in jax.tree.leaves(whole.state.opt_state) if hasattr(x, "size") and x.ndim)
    assert opt_size == 2 * adapter_size  # Adam's two moments, nothing for the base
    b = [v["lora_b"] for v in jax.device_get(whole.state.params).values()]
    assert max(float(np.abs(x).max()) for x in b) > 0  # B left zero: it trained
    # 2 steps, then resume to 4: the same adapters bit for bit
    _run(tmp_path, "split", 2, pre)
    resumed = _run(tmp_path, "split", 4, pre)
    for a, b in zip(jax.tree.leaves(jax.device_get(resumed.state.params)),
                    jax.tree.leaves(jax.device_get(_run(tmp_path, "whole1", 4, pre).state.params))):
        np.testing.assert_array_equal(a, b)
    # the adapters alone, applied to the base by path, give the trained model's logits
    saved = tmp_path / "split" / "adapters" / "4"
    model_config, merged = lora_training.load_merged(saved)
    module = params_io.build_model(model_config)
    fmt = module.FEATURE_FORMAT
    batch = {k: jnp.asarray(v) for k, v in synthetic_batch(fmt, LENGTHS, 2, 64, 5).items()}
    want = lora.apply(module, resumed.state.frozen, resumed.state.params, CFG, batch)
    np.testing.assert_allclose(np.asarray(module.apply({"params": merged}, batch)), np.asarray(want),
                               atol=1e-5, rtol=1e-5)


def test_a_missing_adapter_directory_is_named(tmp_path):
    from flan_jax.errors import FlanJaxError
    with pytest.raises(FlanJaxError, match="not an adapter directory"):
        lora_training.load_adapters(tmp_path)


@pytest.mark.slow
def test_bfloat16_base_with_float32_adapters_trains(tmp_path):
    """LoraConfig.base_dtype = "bfloat16": the frozen base is stored (and stays) bfloat16, the
    adapters and their optimizer state stay float32, and the loss falls (a flan-mini task: its
    targets are digits, learnable in a few steps even through rank-4 adapters on a random base)."""
    import flax.linen as nn

    config = DecoderConfig(vocab_size=1024, emb_dim=32, num_heads=2, num_kv_heads=1, head_dim=16, mlp_dim=64,
                           num_layers=2)
    module = params_io.build_model(config)
    base = jax.device_get(nn.meta.unbox(module.init(jax.random.PRNGKey(0), {
        "decoder_input_tokens": jnp.ones((1, 8), jnp.int32)})["params"]))
    params_io.save_checkpoint(tmp_path / "pre", config, base)
    cfg = lora.LoraConfig(rank=4, alpha=8.0, targets=("heads", "kv_heads", "mlp"), base_dtype="bfloat16")
    r = train(mixture="flan_mini.mini_add:zs_noopt", feature_lengths={"inputs": 32, "targets": 8}, batch_size=8,
              num_steps=15, pretrained=str(tmp_path / "pre"), model_dir=str(tmp_path / "bf16"), lora=cfg,
              optimizer=adamw(1e-2, weight_decay=0.0))
    frozen = jax.device_get(r.state.frozen)
    assert {x.dtype for x in jax.tree.leaves(frozen)} == {jnp.dtype(jnp.bfloat16)}
    for a, b in zip(jax.tree.leaves(frozen), jax.tree.leaves(base)):  # unchanged: the rounded base
        np.testing.assert_array_equal(np.asarray(a), np.asarray(jnp.asarray(b, jnp.bfloat16)))
    assert {x.dtype for x in jax.tree.leaves(r.state.params)} == {jnp.dtype(jnp.float32)}
    assert {x.dtype for x in jax.tree.leaves(r.state.opt_state) if hasattr(x, "dtype") and x.ndim} == {
        jnp.dtype(jnp.float32)}
    assert np.mean(r.losses[-3:]) < np.mean(r.losses[:3]) - 0.5, r.losses  # 7.3 -> 5.3 when written
