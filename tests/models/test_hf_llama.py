"""HF Llama interop: logits parity with transformers, exact round trip, clear errors on bad dirs."""
import dataclasses
import json
import shutil

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from transformers import LlamaConfig, LlamaForCausalLM

from flan_jax.errors import FlanJaxError
from flan_jax.models.decoder import Decoder
from flan_jax.models.hf_llama import load_hf_llama, save_hf_llama


def make_hf_llama(path, tie=False, seed=0, rope=None):
    """A tiny random LlamaForCausalLM saved as safetensors; weights scaled up so logits differ."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, rms_norm_eps=1e-5,
        rope_theta=500.0, tie_word_embeddings=tie, **({"rope_parameters": rope} if rope else {}),
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * (0.3 if p.ndim > 1 else 0.2) + (1.0 if p.ndim == 1 else 0.0))
    model.save_pretrained(path, safe_serialization=True)
    return model


def _hf_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.numpy()


@pytest.mark.parametrize("tie", [False, True])
def test_logits_match_transformers_unpacked(tmp_path, tie):
    model = make_hf_llama(tmp_path / "hf", tie=tie)
    cfg, params = load_hf_llama(tmp_path / "hf")
    assert cfg.tie_embeddings == tie and cfg.rope_theta == 500.0
    ids = np.random.default_rng(0).integers(1, 96, size=(2, 9))
    got = Decoder(cfg).apply({"params": params}, {"decoder_input_tokens": jnp.asarray(ids)})
    want = _hf_logits(model, ids)
    assert np.abs(want).max() > 1.0  # a test that can fail: logits are not all tiny
    assert np.abs(np.asarray(got) - want).max() <= 1e-4


@pytest.mark.parametrize("block_size", [None, 2])  # 2: segment-aware attention in 5 blocks of 2
def test_packed_row_matches_each_sequence_run_alone_in_transformers(tmp_path, block_size):
    model = make_hf_llama(tmp_path / "hf")
    cfg, params = load_hf_llama(tmp_path / "hf", scan_layers=True)
    if block_size:
        cfg = dataclasses.replace(cfg, attention_block_size=block_size)
    a, b = [5, 17, 33, 2, 80], [41, 9, 60]
    batch = {
        "decoder_input_tokens": jnp.array([a + b + [0, 0]]),
        "decoder_segment_ids": jnp.array([[1] * 5 + [2] * 3 + [0, 0]]),
        "decoder_positions": jnp.array([[0, 1, 2, 3, 4, 0, 1, 2, 0, 0]]),
    }
    got = np.asarray(Decoder(cfg).apply({"params": params}, batch))
    assert np.abs(got[0, :5] - _hf_logits(model, [a])[0]).max() <= 1e-4
    assert np.abs(got[0, 5:8] - _hf_logits(model, [b])[0]).max() <= 1e-4


@pytest.mark.parametrize("scan_layers", [False, True])
def test_round_trip_reproduces_tensors_exactly_and_loads_in_transformers(tmp_path, scan_layers):
    model = make_hf_llama(tmp_path / "hf")
    cfg, params = load_hf_llama(tmp_path / "hf", scan_layers=scan_layers)
    save_hf_llama(cfg, params, tmp_path / "back")
    original = load_file(str(tmp_path / "hf" / "model.safetensors"))
    written = load_file(str(tmp_path / "back" / "model.safetensors"))
    assert sorted(original) == sorted(written)
    for name, value in original.items():
        np.testing.assert_array_equal(written[name], value, err_msg=name)
    reloaded = LlamaForCausalLM.from_pretrained(tmp_path / "back").eval()
    ids = np.array([[3, 14, 15, 92, 65]])
    np.testing.assert_array_equal(_hf_logits(reloaded, ids), _hf_logits(model, ids))


def _bad_dir(tmp_path, mutate):
    make_hf_llama(tmp_path / "hf")
    mutate(tmp_path / "hf")
    return tmp_path / "hf"


def _edit_config(**changes):
    def mutate(d):
        cfg = json.loads((d / "config.json").read_text())
        cfg.update(changes)
        (d / "config.json").write_text(json.dumps(cfg))
    return mutate


def _edit_tensors(fn):
    def mutate(d):
        from safetensors.numpy import save_file

        tensors = load_file(str(d / "model.safetensors"))
        fn(tensors)
        save_file(tensors, str(d / "model.safetensors"), metadata={"format": "pt"})
    return mutate


def _only_bin(d):
    (d / "model.safetensors").rename(d / "pytorch_model.bin")


BAD_DIRS = {
    "missing config": (lambda d: (d / "config.json").unlink(), r"config\.json: missing"),
    "unknown architecture": (
        _edit_config(model_type="mistral", architectures=["MistralForCausalLM"]), r"config\.json.*not a Llama"
    ),
    "remote code": (_edit_config(auto_map={"AutoModel": "x.Y"}), r"config\.json.*remote code"),
    "rope scaling": (_edit_config(rope_scaling={"rope_type": "yarn"}), r"config\.json.*rope type 'yarn'"),
    "llama3 rope fields": (
        _edit_config(rope_scaling={"rope_type": "llama3", "factor": 8.0}), r"config\.json.*lacks 'low_freq_factor'"
    ),
    "bin only": (_only_bin, r"pytorch_model\.bin: pickled weights are refused"),
    "missing tensor": (
        _edit_tensors(lambda t: t.pop("model.layers.1.mlp.up_proj.weight")),
        r"model\.safetensors.*missing tensor 'model\.layers\.1\.mlp\.up_proj\.weight'",
    ),
    "wrong shape": (
        _edit_tensors(lambda t: t.update({"model.norm.weight": np.ones(31, np.float32)})),
        r"model\.safetensors: tensor 'model\.norm\.weight' has shape \[31\]",
    ),
    "extra layer": (
        _edit_tensors(lambda t: t.update({"model.layers.2.input_layernorm.weight": np.ones(32, np.float32)})),
        r"model\.safetensors: unexpected tensor 'model\.layers\.2\.input_layernorm\.weight'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DIRS))
def test_bad_hf_dirs_give_errors_naming_file_and_tensor(tmp_path, case):
    mutate, pattern = BAD_DIRS[case]
    model_dir = _bad_dir(tmp_path, mutate)
    with pytest.raises(FlanJaxError, match=pattern):
        load_hf_llama(model_dir)


def test_save_leaves_nothing_behind_on_error(tmp_path):
    make_hf_llama(tmp_path / "hf")
    cfg, params = load_hf_llama(tmp_path / "hf")
    del params["layers_1"]["mlp"]
    with pytest.raises(KeyError):
        save_hf_llama(cfg, params, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["hf"]
    shutil.rmtree(tmp_path / "hf")


def test_bfloat16_checkpoints_load_as_float32(tmp_path):
    model = make_hf_llama(tmp_path / "f32")
    model.to(torch.bfloat16).save_pretrained(tmp_path / "bf16", safe_serialization=True)
    _, params = load_hf_llama(tmp_path / "bf16")
    want = model.model.embed_tokens.weight.detach().float().numpy()
    assert params["embed"]["embedding"].dtype == np.float32
    np.testing.assert_array_equal(params["embed"]["embedding"], want)


def test_sharded_checkpoint_with_index_loads_the_same(tmp_path):
    model = make_hf_llama(tmp_path / "one")
    model.save_pretrained(tmp_path / "sharded", safe_serialization=True, max_shard_size="20KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    assert len(list((tmp_path / "sharded").glob("*.safetensors"))) > 1
    _, one = load_hf_llama(tmp_path / "one")
    _, sharded = load_hf_llama(tmp_path / "sharded")
    np.testing.assert_array_equal(sharded["layers_1"]["mlp"]["down"]["kernel"], one["layers_1"]["mlp"]["down"]["kernel"])
    first_shard = sorted((tmp_path / "sharded").glob("model-*.safetensors"))[0]
    first_shard.unlink()
    with pytest.raises(FlanJaxError, match=rf"index\.json: names {first_shard.name}, which does not exist"):
        load_hf_llama(tmp_path / "sharded")


LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 500.0, "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 64}


def test_llama3_rope_scaling_matches_transformers_and_round_trips(tmp_path):
    # head_dim 8, theta 500: wavelengths 6.3, 30, 140, 664 against 64/4 and 64/1, so one pair
    # is unchanged, one interpolated and two slowed down.
    model = make_hf_llama(tmp_path / "hf", rope=LLAMA3_ROPE)
    cfg, params = load_hf_llama(tmp_path / "hf")
    assert cfg.rope_llama3_scaling == (8.0, 1.0, 4.0, 64)
    ids = np.random.default_rng(1).integers(1, 96, size=(1, 40))
    got = Decoder(cfg).apply({"params": params}, {"decoder_input_tokens": jnp.asarray(ids)})
    assert np.abs(np.asarray(got) - _hf_logits(model, ids)).max() <= 1e-4
    plain = Decoder(dataclasses.replace(cfg, rope_llama3_scaling=None))
    plain_logits = plain.apply({"params": params}, {"decoder_input_tokens": jnp.asarray(ids)})
    assert np.abs(np.asarray(plain_logits) - _hf_logits(model, ids)).max() > 1e-2  # scaling matters here
    save_hf_llama(cfg, params, tmp_path / "back")
    reloaded = LlamaForCausalLM.from_pretrained(tmp_path / "back").eval()
    np.testing.assert_array_equal(_hf_logits(reloaded, ids), _hf_logits(model, ids))


def test_tied_config_with_a_distinct_head_in_the_file_matches_transformers(tmp_path):
    """tie_word_embeddings=true but model.safetensors also holds an lm_head.weight unlike the
    embedding: transformers loads that head untied; so must we (logits compared)."""
    from safetensors.numpy import save_file

    make_hf_llama(tmp_path / "hf", tie=True)
    tensors = load_file(tmp_path / "hf" / "model.safetensors")
    tensors["lm_head.weight"] = (np.random.default_rng(1).standard_normal(
        tensors["model.embed_tokens.weight"].shape) * 0.3).astype(np.float32)
    save_file(tensors, str(tmp_path / "hf" / "model.safetensors"), metadata={"format": "pt"})
    model = LlamaForCausalLM.from_pretrained(tmp_path / "hf").eval()
    cfg, params = load_hf_llama(tmp_path / "hf")
    assert not cfg.tie_embeddings
    ids = np.random.default_rng(0).integers(1, 96, size=(2, 9))
    got = Decoder(cfg).apply({"params": params}, {"decoder_input_tokens": jnp.asarray(ids)})
    assert np.abs(np.asarray(got) - _hf_logits(model, ids)).max() <= 1e-4
    # a tied file that stores an identical copy stays tied
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"]
    save_file(tensors, str(tmp_path / "hf" / "model.safetensors"), metadata={"format": "pt"})
    assert load_hf_llama(tmp_path / "hf")[0].tie_embeddings


def test_export_writes_token_ids_and_transformers_generate_stops_at_our_eos(tmp_path):
    """A flan_jax decoder whose head always prefers id 1 (our EOS): transformers' generate must
    stop after that one token, which it can only do when the export names eos_token_id."""
    from transformers import GenerationConfig

    import flax.linen as nn
    import jax

    from flan_jax.models.decoder import DecoderConfig

    cfg = DecoderConfig(vocab_size=32, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8, mlp_dim=24,
                        num_layers=1, tie_embeddings=False)
    batch = {"decoder_input_tokens": jnp.ones((1, 4), jnp.int32)}
    params = jax.device_get(Decoder(cfg).init(jax.random.PRNGKey(0), batch)["params"])
    # all weights 0 but an all-ones embedding, norm and head column 1: every position's
    # hidden state is the positive ones vector, so id 1 (our EOS) wins by far
    params = jax.tree.map(np.zeros_like, nn.meta.unbox(params))
    params["embed"]["embedding"][:] = 1.0
    params["final_norm"]["scale"][:] = 1.0
    params["lm_head"]["kernel"][:, 1] = 10.0
    save_hf_llama(cfg, params, tmp_path / "hf")
    gen = GenerationConfig.from_pretrained(tmp_path / "hf")
    assert (gen.eos_token_id, gen.pad_token_id, gen.bos_token_id) == (1, 0, None)
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["eos_token_id"] == 1
    model = LlamaForCausalLM.from_pretrained(tmp_path / "hf").eval()
    out = model.generate(torch.tensor([[5, 9, 3]]), max_new_tokens=8, do_sample=False)
    assert out[0, 3:].tolist() == [1]


def test_imported_token_ids_survive_the_round_trip(tmp_path):
    """Llama ids (bos 1, eos 2, no pad) of an imported model come back on export, through the
    CLI's flan_jax checkpoint."""
    from flan_jax.cli import main

    make_hf_llama(tmp_path / "hf")
    want = json.loads((tmp_path / "hf" / "generation_config.json").read_text())
    assert (want["bos_token_id"], want["eos_token_id"]) == (1, 2)  # LlamaConfig's defaults
    assert main(["convert", "--from-hf", str(tmp_path / "hf"), "--out", str(tmp_path / "ckpt")]) == 0
    assert main(["convert", "--to-hf", "--from", str(tmp_path / "ckpt"), "--out", str(tmp_path / "back")]) == 0
    for name in ("config.json", "generation_config.json"):
        got = json.loads((tmp_path / "back" / name).read_text())
        assert (got["bos_token_id"], got["eos_token_id"], got.get("pad_token_id")) == (1, 2, want.get("pad_token_id"))
