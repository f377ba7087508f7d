"""Gemma 3 behaviour: causality and the sliding window's receptive field, packing, scan/remat
equivalence, the decode cache, logical axes, and parameter counts of the shipped gin files
checked against transformers' Gemma3ForCausalLM built on the meta device."""
import dataclasses
import functools
from pathlib import Path

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.models import sharding
from flan_jax.models.decoder import dummy_batch, init_cache
from flan_jax.models.gemma import FULL, SLIDING, Gemma3, Gemma3Config

GIN_DIR = Path(__file__).resolve().parents[2] / "gin_configs" / "models"
TINY = Gemma3Config(vocab_size=64, emb_dim=32, num_heads=4, num_kv_heads=2, head_dim=8, mlp_dim=48, num_layers=3,
                    query_pre_attn_scalar=6.0, sliding_window=3, sliding_window_pattern=2, rope_theta=1000.0,
                    rope_local_base_freq=50.0)


def _init(cfg, seed=0):
    variables = Gemma3(cfg).init(jax.random.PRNGKey(seed), {"decoder_input_tokens": jnp.ones((1, 8), jnp.int32)})
    params = nn.meta.unbox(variables["params"])
    # zero-initialised (1 + w) norm scales would hide a wrong norm: randomise every leaf
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
    return jax.tree_util.tree_unflatten(
        tree, [x + 0.2 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


@functools.lru_cache(maxsize=None)
def _apply_fn(cfg):
    return jax.jit(lambda p, b: Gemma3(cfg).apply({"params": p}, b))


def _forward(cfg, params, tokens, segment_ids=None, positions=None):
    batch = {"decoder_input_tokens": jnp.asarray(tokens)}
    if segment_ids is not None:
        batch["decoder_segment_ids"] = jnp.asarray(segment_ids)
        batch["decoder_positions"] = jnp.asarray(positions)
    return np.asarray(_apply_fn(cfg)(params, batch))


def test_global_layers_follow_the_hf_pattern_or_layer_types():
    assert TINY.global_layers == (False, True, False)
    assert Gemma3Config(num_layers=8).global_layers == (False,) * 5 + (True, False, False)
    explicit = dataclasses.replace(TINY, layer_types=[FULL, SLIDING, SLIDING])  # a JSON list
    assert explicit.layer_types == (FULL, SLIDING, SLIDING) and explicit.global_layers == (True, False, False)


@pytest.mark.slow
def test_packed_row_equals_segments_run_alone():
    params = _init(TINY)
    a, b = [5, 9, 3, 7, 30], [11, 2, 8, 40]  # both longer than the window 3
    packed = _forward(TINY, params, [a + b + [0]], [[1] * 5 + [2] * 4 + [0]], [list(range(5)) + list(range(4)) + [0]])
    alone_a = _forward(TINY, params, [a], [[1] * 5], [list(range(5))])
    alone_b = _forward(TINY, params, [b], [[1] * 4], [list(range(4))])
    np.testing.assert_allclose(packed[0, :5], alone_a[0], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(packed[0, 5:9], alone_b[0], atol=1e-5, rtol=1e-5)


def _embedding_grads(cfg, tokens):
    """|d log p(token 3 at t) / d embedding at s| summed over D: [t, s]."""
    model = Gemma3(cfg)
    batch = {"decoder_input_tokens": jnp.asarray(tokens)}
    variables = model.init(jax.random.PRNGKey(1), batch)
    params, perturb = _init(cfg), variables["perturbations"]

    def per_position_loss(p):
        logits = model.apply({"params": params, "perturbations": p}, batch)
        return jax.nn.log_softmax(logits[0])[:, 3]

    jac = jax.jit(jax.jacrev(per_position_loss))(perturb)["embedded"]  # [L, 1, L, D]
    return np.abs(np.asarray(jac[:, 0])).sum(-1)


def test_causal_loss_has_zero_gradient_wrt_later_embeddings():
    norms = _embedding_grads(TINY, np.array([[4, 8, 15, 16, 23, 42, 7, 9]]))
    later = np.triu(np.ones_like(norms, dtype=bool), k=1)
    assert np.all(norms[later] == 0.0)
    assert np.all(norms[~later] > 0.0)  # the global layer sees the whole prefix


def test_local_layers_only_see_their_window():
    """Two local layers of window 3: position t depends on s exactly when 0 <= t - s <= 2 * (3 - 1)."""
    cfg = dataclasses.replace(TINY, num_layers=2, layer_types=(SLIDING, SLIDING))
    norms = _embedding_grads(cfg, np.array([[4, 8, 15, 16, 23, 42, 7, 9]]))
    t, s = np.indices(norms.shape)
    np.testing.assert_array_equal(norms > 0, (t - s >= 0) & (t - s <= 4))


def _stack_layers(params, num_layers):
    params = dict(params)
    layers_ = [params.pop(f"layers_{i}") for i in range(num_layers)]
    params["layers"] = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *layers_)
    return params


@pytest.mark.slow
@pytest.mark.parametrize("remat", ["none", "full"])
def test_scanned_and_rematerialized_layers_compute_the_same(remat):
    params = _init(TINY)
    tokens = np.array([[3, 1, 4, 1, 5, 9, 2, 6]])
    want = _forward(TINY, params, tokens)
    scanned_cfg = dataclasses.replace(TINY, scan_layers=True, remat=remat)
    scanned = _stack_layers(params, TINY.num_layers)
    np.testing.assert_allclose(_forward(scanned_cfg, scanned, tokens), want, atol=1e-5, rtol=1e-5)
    batch = {"decoder_input_tokens": tokens}
    grads = jax.grad(lambda p: Gemma3(scanned_cfg).apply({"params": p}, batch).sum())(scanned)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


@pytest.mark.slow
@pytest.mark.parametrize("scan_layers", [False, True])
def test_cached_decoding_equals_full_forward_past_the_window(scan_layers):
    """Rows with prompts of different lengths (right padding), 6 decode steps past window 3."""
    cfg = dataclasses.replace(TINY, scan_layers=scan_layers)
    params = _init(TINY)
    if scan_layers:
        params = _stack_layers(params, cfg.num_layers)
    model = Gemma3(cfg)
    rows = [[5, 9, 3, 7], [11, 2]]
    continuation = [[20, 21, 22, 23, 24, 25], [30, 31, 32, 33, 34, 35]]
    prompt = np.array([r + [0] * (4 - len(r)) for r in rows])
    segments = (prompt != 0).astype(np.int32)
    positions = np.broadcast_to(np.arange(4), (2, 4))
    step = jax.jit(lambda c, t, p, s: model.apply({"params": params, "cache": c}, t, p, s, method="decode",
                                                  mutable=["cache"]))
    logits, v = step(init_cache(model, 2, 4 + 6), prompt, positions, segments)
    got = [[logits[r, len(rows[r]) - 1]] for r in range(2)]
    for k in range(6):
        tok = np.array([[continuation[0][k]], [continuation[1][k]]])
        pos = np.array([[len(rows[0]) + k], [len(rows[1]) + k]])
        logits, v = step(v["cache"], tok, pos, np.ones((2, 1), np.int32))
        for r in range(2):
            got[r].append(logits[r, 0])
    for r in range(2):
        full = _forward(cfg, params, [rows[r] + continuation[r]])[0, len(rows[r]) - 1:]
        np.testing.assert_allclose(np.stack(got[r]), full, atol=1e-4, rtol=1e-4)


def test_every_parameter_has_logical_axes():
    abstract = jax.eval_shape(Gemma3(TINY).init, jax.random.PRNGKey(0), dummy_batch())["params"]
    axes = sharding.logical_axes_tree(abstract)
    flat = {"/".join(str(k.key) for k in path): v for path, v in
            jax.tree_util.tree_flatten_with_path(axes, is_leaf=lambda x: isinstance(x, tuple))[0]}
    assert all(v is not None for v in flat.values())
    assert flat["layers_0/attention/query_norm/scale"] == ("head_dim",)
    assert flat["layers_0/attention/key/kernel"] == ("embed", "kv_heads", "head_dim")
    assert flat["layers_1/post_mlp_norm/scale"] == ("embed",)
    assert flat["embed/embedding"] == ("vocab", "embed")
    assert "lm_head/kernel" not in flat  # tied


def test_bad_config_values_are_refused():
    with pytest.raises(ValueError, match="layer_types has 2 entries"):
        dataclasses.replace(TINY, layer_types=(SLIDING, FULL))
    with pytest.raises(ValueError, match="not in"):
        dataclasses.replace(TINY, layer_types=(SLIDING, "chunked_attention", FULL))
    with pytest.raises(ValueError, match="multiple of num_kv_heads"):
        dataclasses.replace(TINY, num_kv_heads=3)
    with pytest.raises(ValueError, match="causal LM"):
        Gemma3(TINY).apply({"params": _init(TINY)}, jnp.ones((1, 2), jnp.int32), jnp.zeros((1, 2), jnp.int32),
                           None, jnp.ones((1, 2), jnp.int32), method="decode", mutable=["cache"])


# ---- parameter counts of the shipped gin files, against transformers on the meta device


def _gin_config(name):
    gin.clear_config()
    try:
        gin.parse_config_file(str(GIN_DIR / name))
        return Gemma3Config()
    finally:
        gin.clear_config()


def _our_count(cfg):
    abstract = jax.eval_shape(Gemma3(cfg).init, jax.random.PRNGKey(0), dummy_batch())["params"]
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(nn.meta.unbox(abstract)))


def _transformers_count(cfg):
    """Independent count: transformers' Gemma3ForCausalLM built on the meta device (no memory)."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from flan_jax.models.hf_gemma import hf_config_dict

    fields = {k: v for k, v in hf_config_dict(cfg).items() if k not in ("architectures", "model_type", "torch_dtype")}
    with torch.device("meta"):
        model = Gemma3ForCausalLM(Gemma3TextConfig(**fields))
    return sum(p.numel() for p in model.parameters())  # the tied head is counted once


@pytest.mark.parametrize("name, layers, width, global_every, window, factor, total", [
    ("gemma3_270m.gin", 18, 640, 6, 512, 1.0, 268_098_176),
    ("gemma3_1b.gin", 26, 1152, 6, 512, 1.0, 999_885_952),
    ("gemma3_4b.gin", 34, 2560, 6, 1024, 8.0, 3_880_263_168),
    ("gemma3_12b.gin", 48, 3840, 6, 1024, 8.0, 11_766_034_176),
    ("gemma3_27b.gin", 62, 5376, 6, 1024, 8.0, 27_009_346_304),
])
def test_gin_files_match_transformers_parameter_count(name, layers, width, global_every, window, factor, total):
    cfg = _gin_config(name)
    assert (cfg.num_layers, cfg.emb_dim, cfg.sliding_window, cfg.rope_scaling_factor) == (layers, width, window, factor)
    assert cfg.global_layers == tuple((i + 1) % global_every == 0 for i in range(layers))
    assert _our_count(cfg) == _transformers_count(cfg) == total


def test_bfloat16_compute_stays_close_to_float32():
    params = _init(TINY)
    tokens = np.array([[3, 1, 4, 1, 5, 9, 2, 6]])
    f32 = _forward(TINY, params, tokens)
    bf16 = _forward(dataclasses.replace(TINY, dtype="bfloat16"), params, tokens)
    assert bf16.dtype == np.float32  # logits are float32 whatever the compute dtype
    assert np.abs(bf16 - f32).max() <= 0.05 * np.abs(f32).max()
    assert (bf16.argmax(-1) == f32.argmax(-1)).mean() >= 0.75
