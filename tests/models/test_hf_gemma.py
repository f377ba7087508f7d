"""HF Gemma 3 interop: logits parity with transformers' Gemma3ForCausalLM (unpadded, padded, packed),
greedy generation parity past the sliding window, exact round trip, clear refusals."""
import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

from flan_jax.errors import FlanJaxError
from flan_jax.models.decoder import init_cache
from flan_jax.models.gemma import Gemma3
from flan_jax.models.hf_config import read_safetensors
from flan_jax.models.hf_gemma import load_hf_gemma, params_from_hf, save_hf_gemma

VOCAB, WINDOW = 96, 4


def make_hf_gemma(path=None, seed=0, **overrides):
    """A tiny random Gemma3ForCausalLM: 3 layers (local, global, local), window 4 < the sequences,
    query_pre_attn_scalar != head_dim, distinct RoPE bases; every weight (norms too) random."""
    torch.manual_seed(seed)
    fields = dict(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=6, sliding_window=WINDOW,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"], rms_norm_eps=1e-6,
        rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1000.0},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 50.0}},
        max_position_embeddings=64, pad_token_id=0, eos_token_id=1, bos_token_id=2,
    )
    fields.update(overrides)
    config = Gemma3TextConfig(**fields)
    model = Gemma3ForCausalLM(config, ).eval()
    model.config._attn_implementation = "eager"
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * (0.3 if p.ndim > 1 else 0.2))
    if path is not None:
        model.save_pretrained(path, safe_serialization=True)
    return model


def _hf_logits(model, ids, attention_mask=None):
    mask = None if attention_mask is None else torch.tensor(attention_mask)
    with torch.no_grad():
        return model(torch.tensor(ids), attention_mask=mask).logits.numpy()


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("gemma") / "hf"
    model = make_hf_gemma(path)
    return path, model


def test_config_is_read_from_the_hf_directory(hf_dir):
    cfg, _ = load_hf_gemma(hf_dir[0])
    assert (cfg.num_layers, cfg.emb_dim, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim) == (3, 32, 4, 2, 8)
    assert cfg.global_layers == (False, True, False)
    assert (cfg.rope_theta, cfg.rope_local_base_freq, cfg.query_pre_attn_scalar) == (1000.0, 50.0, 6.0)
    assert cfg.sliding_window == WINDOW and cfg.tie_embeddings


@pytest.mark.parametrize("scan_layers", [False, True])
def test_logits_match_transformers_unpacked(hf_dir, scan_layers):
    path, model = hf_dir
    cfg, params = load_hf_gemma(path, scan_layers=scan_layers)
    ids = np.random.default_rng(0).integers(1, VOCAB, size=(2, 11))  # 11 > window 4
    got = np.asarray(Gemma3(cfg).apply({"params": params}, {"decoder_input_tokens": jnp.asarray(ids)}))
    want = _hf_logits(model, ids)
    assert np.abs(want).max() > 1.0  # a test that can fail: logits are not all tiny
    assert np.abs(got - want).max() <= 1e-4


def test_window_matters_so_the_parity_test_can_fail(hf_dir):
    """With the window widened to the sequence length, logits beyond the window differ."""
    path, model = hf_dir
    cfg, params = load_hf_gemma(path, sliding_window=64)
    ids = np.random.default_rng(0).integers(1, VOCAB, size=(1, 11))
    got = np.asarray(Gemma3(cfg).apply({"params": params}, {"decoder_input_tokens": jnp.asarray(ids)}))
    want = _hf_logits(model, ids)
    assert np.abs(got[:, :WINDOW] - want[:, :WINDOW]).max() <= 1e-4
    assert np.abs(got[:, WINDOW:] - want[:, WINDOW:]).max() > 1e-2


def test_padded_batch_matches_transformers_with_attention_mask(hf_dir):
    path, model = hf_dir
    cfg, params = load_hf_gemma(path)
    rng = np.random.default_rng(1)
    ids = rng.integers(1, VOCAB, size=(2, 10))
    lengths = [10, 7]
    ids[1, 7:] = 0
    mask = (np.arange(10)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
    batch = {"decoder_input_tokens": jnp.asarray(ids), "decoder_segment_ids": jnp.asarray(mask)}
    got = np.asarray(Gemma3(cfg).apply({"params": params}, batch))
    want = _hf_logits(model, ids, mask)
    for row, n in enumerate(lengths):
        assert np.abs(got[row, :n] - want[row, :n]).max() <= 1e-4


@pytest.mark.parametrize("skip_blocks", [False, True])  # True: segment-aware attention, 5 blocks of 3
def test_packed_row_matches_each_sequence_run_alone_in_transformers(hf_dir, skip_blocks):
    path, model = hf_dir
    cfg, params = load_hf_gemma(path, scan_layers=True)
    if skip_blocks:
        cfg = dataclasses.replace(cfg, skip_masked_attention_blocks=True, attention_block_size=3)
    a, b = [5, 17, 33, 2, 80, 7, 61], [41, 9, 60, 12, 3, 30]  # both longer than the window
    batch = {
        "decoder_input_tokens": jnp.array([a + b + [0, 0]]),
        "decoder_segment_ids": jnp.array([[1] * 7 + [2] * 6 + [0, 0]]),
        "decoder_positions": jnp.array([list(range(7)) + list(range(6)) + [0, 0]]),
    }
    got = np.asarray(Gemma3(cfg).apply({"params": params}, batch))
    assert np.abs(got[0, :7] - _hf_logits(model, [a])[0]).max() <= 1e-4
    assert np.abs(got[0, 7:13] - _hf_logits(model, [b])[0]).max() <= 1e-4


def _greedy_with_cache(cfg, params, prompt, steps):
    model = Gemma3(cfg)
    p = len(prompt)

    @jax.jit
    def run(cache, tokens, positions):
        return model.apply({"params": params, "cache": cache}, tokens, positions, method="decode", mutable=["cache"])

    logits, v = run(init_cache(model, 1, p + steps), jnp.asarray([prompt]), jnp.arange(p)[None, :])
    out = [int(jnp.argmax(logits[0, -1]))]
    for k in range(steps - 1):
        logits, v = run(v["cache"], jnp.asarray([[out[-1]]]), jnp.asarray([[p + k]]))
        out.append(int(jnp.argmax(logits[0, -1])))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("scan_layers", [False, True])
def test_greedy_decode_with_cache_matches_transformers_generate_past_the_window(hf_dir, scan_layers):
    path, model = hf_dir
    cfg, params = load_hf_gemma(path, scan_layers=scan_layers)
    prompt, steps = [2, 14, 15, 92 % VOCAB, 65], 7  # 5 + 7 positions > window 4
    got = _greedy_with_cache(cfg, params, prompt, steps)
    with torch.no_grad():
        want = model.generate(torch.tensor([prompt]), max_new_tokens=steps, do_sample=False, eos_token_id=None,
                              pad_token_id=0, min_new_tokens=steps)[0, len(prompt):].tolist()
    assert got == want


@pytest.mark.slow
def test_eval_decoding_generate_matches_transformers(hf_dir):
    """flan_jax.eval.decoding (batched prompts, right padding) on Gemma equals HF greedy."""
    from flan_jax.eval import decoding

    path, model = hf_dir
    cfg, params = load_hf_gemma(path)
    inputs = [[14, 15, 33, 65, 7], [40, 22]]
    result = decoding.generate(Gemma3(cfg), params, inputs, config=decoding.DecodeConfig(max_decode_length=6),
                               input_length=6, batch_size=2)
    for ids, got in zip(inputs, result.tokens):
        prompt = [2] + ids  # decoding prefixes the model's BOS (Gemma's <bos> = 2, features.model_bos_id)
        with torch.no_grad():
            # attention_mask given: HF would otherwise mask the leading id 0 as padding
            full = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                                  max_new_tokens=6, do_sample=False, eos_token_id=None,
                                  pad_token_id=0, min_new_tokens=6)[0, len(prompt):].tolist()
        assert got == decoding.trim_at_eos(np.asarray(full))


@pytest.mark.slow
@pytest.mark.parametrize("scan_layers", [False, True])
def test_round_trip_reproduces_tensors_exactly_and_loads_in_transformers(hf_dir, tmp_path, scan_layers):
    path, model = hf_dir
    cfg, params = load_hf_gemma(path, scan_layers=scan_layers)
    save_hf_gemma(cfg, params, tmp_path / "back")
    original = load_file(str(path / "model.safetensors"))
    written = load_file(str(tmp_path / "back" / "model.safetensors"))
    assert sorted(original) == sorted(written)
    for name, value in original.items():
        np.testing.assert_array_equal(written[name], value, err_msg=name)
    config = json.loads((tmp_path / "back" / "config.json").read_text())
    assert (config["pad_token_id"], config["eos_token_id"], config["bos_token_id"]) == (0, 1, 2)
    reloaded = Gemma3ForCausalLM.from_pretrained(tmp_path / "back", attn_implementation="eager").eval()
    ids = np.array([[3, 14, 15, 92 % VOCAB, 65, 35, 89, 79]])
    np.testing.assert_array_equal(_hf_logits(reloaded, ids), _hf_logits(model, ids))
    cfg2, params2 = load_hf_gemma(tmp_path / "back", scan_layers=scan_layers)
    assert cfg2 == cfg
    jax.tree.map(np.testing.assert_array_equal, params2, params)


def test_export_refuses_a_non_empty_directory(hf_dir, tmp_path):
    cfg, params = load_hf_gemma(hf_dir[0])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(FlanJaxError, match="not an empty directory"):
        save_hf_gemma(cfg, params, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["keep.txt"]


def test_in_memory_conversion_equals_the_directory_reader(hf_dir):
    path, _ = hf_dir
    tensors, _ = read_safetensors(path)
    config = json.loads((path / "config.json").read_text())
    cfg, params = params_from_hf({k: v.astype(np.float16) for k, v in tensors.items()}, config, where="x.gguf")
    cfg_dir, params_dir = load_hf_gemma(path)
    assert cfg == cfg_dir
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-3, rtol=1e-3), params, params_dir)


@pytest.mark.slow
def test_linear_rope_scaling_on_global_layers_matches_transformers(tmp_path):
    rope = {"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 50.0}}
    model = make_hf_gemma(tmp_path / "hf", seed=3, rope_parameters=rope)
    cfg, params = load_hf_gemma(tmp_path / "hf")
    assert cfg.rope_scaling_factor == 8.0
    ids = np.random.default_rng(2).integers(1, VOCAB, size=(1, 9))
    got = np.asarray(Gemma3(cfg).apply({"params": params}, {"decoder_input_tokens": jnp.asarray(ids)}))
    assert np.abs(got - _hf_logits(model, ids)).max() <= 1e-4


def _bad_config(hf_dir, tmp_path, mutate):
    bad = tmp_path / "bad"
    shutil.copytree(hf_dir[0], bad)
    config = json.loads((bad / "config.json").read_text())
    mutate(config)
    (bad / "config.json").write_text(json.dumps(config))
    return bad


@pytest.mark.parametrize("mutate, key", [
    (lambda c: c.update(attn_logit_softcapping=50.0), "attn_logit_softcapping"),
    (lambda c: c.update(final_logit_softcapping=30.0), "final_logit_softcapping"),
    (lambda c: c.update(hidden_activation="relu"), "hidden_activation"),
    (lambda c: c.update(use_bidirectional_attention=True), "use_bidirectional_attention"),
    (lambda c: c["rope_parameters"]["full_attention"].update(rope_type="yarn"), "rope_scaling type 'yarn'"),
    (lambda c: c.update(model_type="gemma2"), "model_type 'gemma2'"),
    (lambda c: c.update(model_type="gemma3", text_config=dict(c), vision_config={"hidden_size": 8}), "vision_config"),
])
def test_unsupported_configs_are_refused_naming_the_key(hf_dir, tmp_path, mutate, key):
    bad = _bad_config(hf_dir, tmp_path, mutate)
    with pytest.raises(FlanJaxError, match=key) as e:
        load_hf_gemma(bad)
    assert "\n" not in str(e.value)


def test_text_only_gemma3_config_is_read_through_its_text_config(hf_dir, tmp_path):
    bad = _bad_config(hf_dir, tmp_path, lambda c: c.update(model_type="gemma3", text_config=dict(c)))
    assert load_hf_gemma(bad)[0] == load_hf_gemma(hf_dir[0])[0]


def test_missing_and_misshapen_tensors_are_named(hf_dir):
    tensors, _ = read_safetensors(hf_dir[0])
    config = json.loads((hf_dir[0] / "config.json").read_text())
    missing = {k: v for k, v in tensors.items() if k != "model.layers.1.self_attn.k_norm.weight"}
    with pytest.raises(FlanJaxError, match="missing tensor 'model.layers.1.self_attn.k_norm.weight'"):
        params_from_hf(missing, config)
    wrong = dict(tensors, **{"model.norm.weight": np.zeros(5, np.float32)})
    with pytest.raises(FlanJaxError, match="'model.norm.weight' has shape"):
        params_from_hf(wrong, config)
    extra = dict(tensors, **{"model.layers.3.mlp.up_proj.weight": np.zeros((48, 32), np.float32)})
    with pytest.raises(FlanJaxError, match="unexpected tensor 'model.layers.3"):
        params_from_hf(extra, config)


class _CharVocab:
    """Test vocabulary: each character is one id in [3, VOCAB)."""

    def encode(self, text):
        return [3 + ord(c) % (VOCAB - 3) for c in text]


def test_rank_classification_scores_equal_transformers_log_likelihoods(hf_dir):
    """eval.rank_classification on Gemma: each option's score is HF's log p(option + EOS | [<bos>=2] + inputs)."""
    from flan_jax.eval.rank_classification import rank_classify

    path, model = hf_dir
    cfg, params = load_hf_gemma(path)
    examples = [{"inputs": [14, 15, 33, 65, 7, 8], "options": ["ab", "zzzq"]},
                {"inputs": [40, 22], "options": ["x", "yy"]}]
    result = rank_classify(Gemma3(cfg), params, examples, vocabulary=_CharVocab(),
                           lengths={"inputs": 8, "targets": 6}, batch_size=4)
    for ex, got in zip(examples, result.log_likelihoods):
        for option, ll in zip(ex["options"], got):
            target = _CharVocab().encode(option) + [1]
            seq = [2] + ex["inputs"] + target
            logp = torch.log_softmax(torch.tensor(_hf_logits(model, [seq[:-1]])[0]), -1).numpy()
            want = sum(logp[len(ex["inputs"]) + j, t] for j, t in enumerate(target))
            assert ll == pytest.approx(want, abs=1e-3)
    assert result.predictions == [int(np.argmax(x)) for x in result.log_likelihoods]


@pytest.mark.slow
def test_convert_cli_then_train_from_the_converted_checkpoint(hf_dir, tmp_path, capsys):
    """`flan-jax convert --from-hf` dispatches on model_type; train() starts from those weights on a
    2x2x2 mesh and takes finite steps; --to-hf writes the tensors back unchanged."""
    from flan_jax.cli import main
    from flan_jax.models import params_io
    from flan_jax.train.train import train

    path, _ = hf_dir
    assert main(["convert", "--from-hf", str(path), "--out", str(tmp_path / "ckpt"), "--scan-layers"]) == 0
    assert "Gemma3Config" in capsys.readouterr().out
    config, params = params_io.load_checkpoint(tmp_path / "ckpt")
    assert type(config).__name__ == "Gemma3Config" and config.scan_layers
    r = train(model=None, pretrained=str(tmp_path / "ckpt"), mixture="synthetic",
              feature_lengths={"inputs": 6, "targets": 6}, batch_size=8, num_steps=2, mesh_shape=(2, 2, 2),
              model_dir=str(tmp_path / "run"), checkpoint_every=100, log_every=1)
    assert r.step == 2 and all(np.isfinite(r.losses))
    assert main(["convert", "--to-hf", "--from", str(tmp_path / "ckpt"), "--out", str(tmp_path / "back")]) == 0
    original = load_file(str(path / "model.safetensors"))
    written = load_file(str(tmp_path / "back" / "model.safetensors"))
    assert sorted(original) == sorted(written)
    for name, value in original.items():
        np.testing.assert_array_equal(written[name], value, err_msg=name)



def test_transformers4_spelling_of_the_270m_config_gives_the_gin_files_config():
    """google/gemma-3-270m's config.json keys (transformers 4 rope spelling, layer_types listed;
    the numbers of the brief's GGUF metadata) read to the config of gemma3_270m.gin."""
    import dataclasses

    import gin

    from flan_jax.models.gemma import Gemma3Config
    from flan_jax.models.hf_gemma import config_from_hf
    from flan_jax.train.gin_config import parse_gin

    published = {
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "vocab_size": 262144,
        "hidden_size": 640, "intermediate_size": 2048, "num_hidden_layers": 18, "num_attention_heads": 4,
        "num_key_value_heads": 1, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
        "query_pre_attn_scalar": 256, "sliding_window": 512, "rope_theta": 1000000.0,
        "rope_local_base_freq": 10000.0, "rope_scaling": None, "rms_norm_eps": 1e-06,
        "attn_logit_softcapping": None, "final_logit_softcapping": None, "max_position_embeddings": 32768,
        "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2, "tie_word_embeddings": True,
        "_sliding_window_pattern": 6,
        "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 3,
    }
    got = config_from_hf(published)
    gin.clear_config()
    try:
        parse_gin(["models/gemma3_270m.gin"], [])
        want = Gemma3Config()
    finally:
        gin.clear_config()
    runtime = dict(remat="none", scan_layers=False, dtype="float32")
    assert dataclasses.replace(got, layer_types=None, **runtime) == dataclasses.replace(want, **runtime)
    assert got.global_layers == want.global_layers
    with_scaling = config_from_hf({**published, "rope_scaling": {"type": "linear", "factor": 8.0}})
    assert with_scaling.rope_scaling_factor == 8.0 and with_scaling.rope_theta == 1e6
