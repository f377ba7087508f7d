"""HF T5 conversion: logits parity with transformers, exact round trips, clear errors."""
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from flan_jax.errors import FlanJaxError
from flan_jax.models.hf_t5 import load_hf_t5, save_hf_t5
from flan_jax.models.t5 import T5

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

# Two tiny random models: v1.1 / Flan-T5 style (gated-GELU, untied head) and original T5
# (ReLU, head tied with the 1/sqrt(d) rescale). Small bucket settings so that 30 tokens
# reach the log-spaced and the clipped buckets; 2 encoder vs 3 decoder layers.
VARIANTS = {"v1_1": ("gated-gelu", False), "original": ("relu", True)}


def _hf_model(variant):
    proj, tie = VARIANTS[variant]
    torch.manual_seed(0)
    cfg = transformers.T5Config(
        vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=3,
        num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=20,
        feed_forward_proj=proj, tie_word_embeddings=tie, dropout_rate=0.0,
    )
    model = transformers.T5ForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        if not tie:  # transformers 5 starts every T5 head tied: give it its own weights
            model.lm_head.weight = torch.nn.Parameter(torch.randn(100, 32))
        for name, p in model.named_parameters():
            if "layer_norm" in name:  # non-trivial norm scales
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def hf_dir(request, tmp_path_factory):
    model = _hf_model(request.param)
    path = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(path, safe_serialization=True)
    return model, path


def _inputs():
    rng = np.random.default_rng(0)
    enc = rng.integers(2, 100, (2, 30))
    enc[1, 20:] = 0  # padding in the second row
    dec = rng.integers(2, 100, (2, 25))
    dec[:, 0] = 0  # BOS
    return enc, dec


def _hf_logits(model, enc, dec):
    with torch.no_grad():
        return model(
            input_ids=torch.tensor(enc), attention_mask=torch.tensor(enc != 0).long(),
            decoder_input_ids=torch.tensor(dec),
        ).logits.numpy()


def _our_logits(config, params, enc, dec):
    batch = {"encoder_input_tokens": jnp.asarray(enc, jnp.int32),
             "decoder_input_tokens": jnp.asarray(dec, jnp.int32)}
    return np.asarray(jax.jit(T5(config).apply)({"params": params}, batch))


def test_logits_match_transformers(hf_dir):
    model, path = hf_dir
    config, params = load_hf_t5(path)
    assert config.tie_embeddings == model.config.scale_decoder_outputs
    enc, dec = _inputs()
    ref = _hf_logits(model, enc, dec)
    ours = _our_logits(config, params, enc, dec)
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)


def test_round_trip_is_exact_and_loads_in_transformers(hf_dir, tmp_path):
    model, path = hf_dir
    config, params = load_hf_t5(path)
    save_hf_t5(config, params, tmp_path)
    theirs, ours = load_file(str(path / "model.safetensors")), load_file(str(tmp_path / "model.safetensors"))
    assert set(ours) == set(theirs) - {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"}
    for name, array in ours.items():
        np.testing.assert_array_equal(array, theirs[name], err_msg=name)
    config2, params2 = load_hf_t5(tmp_path)
    assert config2 == config
    reloaded = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    enc, dec = _inputs()
    np.testing.assert_allclose(_hf_logits(reloaded, enc, dec), _hf_logits(model, enc, dec), atol=1e-6)


def test_export_refuses_a_non_empty_directory_and_leaves_it_alone(hf_dir, tmp_path):
    _, path = hf_dir
    config, params = load_hf_t5(path)
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(FlanJaxError, match="exists and is not an empty directory"):
        save_hf_t5(config, params, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_folds_rescale_into_a_distinct_head(tmp_path):
    """A checkpoint that rescales but has its own lm_head (possible in transformers 5)."""
    model = _hf_model("original")
    with torch.no_grad():
        model.lm_head.weight = torch.nn.Parameter(torch.randn(100, 32))
    model.save_pretrained(tmp_path, safe_serialization=True)
    config, params = load_hf_t5(tmp_path)
    assert not config.tie_embeddings
    enc, dec = _inputs()
    np.testing.assert_allclose(_our_logits(config, params, enc, dec), _hf_logits(model, enc, dec), atol=1e-4)


@pytest.fixture()
def v11_copy(tmp_path):
    model = _hf_model("v1_1")
    model.save_pretrained(tmp_path, safe_serialization=True)
    return tmp_path


def test_refuses_pickled_weights(v11_copy):
    (v11_copy / "model.safetensors").unlink()
    (v11_copy / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(FlanJaxError, match=r"pytorch_model\.bin.*safe_serialization"):
        load_hf_t5(v11_copy)


def test_unknown_architecture(v11_copy):
    cfg = json.loads((v11_copy / "config.json").read_text())
    cfg["architectures"] = ["T5EncoderModel"]
    (v11_copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FlanJaxError, match=r"config\.json.*T5EncoderModel"):
        load_hf_t5(v11_copy)
    cfg["architectures"] = ["T5WithLMHeadModel"]  # the old class name is the same model
    (v11_copy / "config.json").write_text(json.dumps(cfg))
    assert load_hf_t5(v11_copy)[0].emb_dim == 32
    cfg["model_type"] = "bart"
    (v11_copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FlanJaxError, match=r"config\.json.*'bart'"):
        load_hf_t5(v11_copy)


def test_remote_code_and_malformed_config_are_refused(v11_copy):
    cfg = json.loads((v11_copy / "config.json").read_text())
    (v11_copy / "config.json").write_text(json.dumps({**cfg, "auto_map": {"AutoModel": "x.Y"}}))
    with pytest.raises(FlanJaxError, match=r"config\.json.*remote code"):
        load_hf_t5(v11_copy)
    (v11_copy / "config.json").write_text("{not json")
    with pytest.raises(FlanJaxError, match=r"config\.json: not valid JSON"):
        load_hf_t5(v11_copy)


def test_missing_tensor(v11_copy):
    tensors = load_file(str(v11_copy / "model.safetensors"))
    del tensors["decoder.block.2.layer.1.EncDecAttention.k.weight"]
    save_file(tensors, str(v11_copy / "model.safetensors"))
    with pytest.raises(FlanJaxError, match=r"model\.safetensors.*decoder\.block\.2\.layer\.1\.EncDecAttention\.k\.weight.*missing"):
        load_hf_t5(v11_copy)


def test_wrong_shape(v11_copy):
    tensors = load_file(str(v11_copy / "model.safetensors"))
    tensors["encoder.block.1.layer.1.DenseReluDense.wi_0.weight"] = np.zeros((65, 32), np.float32)
    save_file(tensors, str(v11_copy / "model.safetensors"))
    with pytest.raises(FlanJaxError, match=r"model\.safetensors.*wi_0\.weight.*\(65, 32\).*\(64, 32\)"):
        load_hf_t5(v11_copy)


def test_missing_config(tmp_path):
    shutil.rmtree(tmp_path)
    tmp_path.mkdir()
    with pytest.raises(FlanJaxError, match=r"config\.json.*not found"):
        load_hf_t5(tmp_path)


def test_bfloat16_and_sharded_checkpoints(tmp_path):
    """bfloat16 tensors (no numpy dtype) and several weight shards load like the float32 file."""
    model = _hf_model("v1_1")
    model.save_pretrained(tmp_path / "f32", safe_serialization=True)
    model.to(torch.bfloat16).save_pretrained(tmp_path / "bf16", safe_serialization=True,
                                             max_shard_size="20KB")
    assert len(list((tmp_path / "bf16").glob("*.safetensors"))) > 1
    config32, params32 = load_hf_t5(tmp_path / "f32")
    config16, params16 = load_hf_t5(tmp_path / "bf16")
    assert config16 == config32
    rounded = jax.tree_util.tree_map(lambda a: np.asarray(jnp.asarray(a, jnp.bfloat16), np.float32), params32)
    jax.tree_util.tree_map(np.testing.assert_array_equal, params16, rounded)


def test_export_writes_t5_token_ids_for_generate(hf_dir, tmp_path):
    from transformers import GenerationConfig

    from flan_jax.models.hf_t5 import load_hf_t5, save_hf_t5

    config, params = load_hf_t5(hf_dir[1])
    save_hf_t5(config, params, tmp_path / "out")
    gen = GenerationConfig.from_pretrained(tmp_path / "out")
    assert (gen.eos_token_id, gen.pad_token_id, gen.decoder_start_token_id) == (1, 0, 0)
