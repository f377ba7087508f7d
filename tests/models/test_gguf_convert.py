"""llama GGUF -> flan_jax: the permutation undone (HF tensors back exactly, same as transformers'
GGUF loader), logits equal to transformers, and `flan-jax convert --from-gguf` end to end."""
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from flan_jax.cli import main
from flan_jax.models import gguf_io, params_io
from flan_jax.models.decoder import Decoder
from tests.models.gguf_fixtures import llama_cpp_permute, write_gemma3, write_llama_from_hf

CONFIG = dict(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5, rope_theta=500.0)


def _hf_llama(tie=False, seed=0):
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(tie_word_embeddings=tie, **CONFIG)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * (0.3 if p.ndim > 1 else 0.2) + (1.0 if p.ndim == 1 else 0.0))
    state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    if tie:
        state.pop("lm_head.weight")
    return model, state


def test_unpermute_inverts_llama_cpp_permutation_by_hand():
    rows = np.arange(8.0)[:, None]  # one head of Dh = 8: HF halves [0 1 2 3 | 4 5 6 7]
    gguf_rows = llama_cpp_permute(rows, 1)
    np.testing.assert_array_equal(gguf_rows[:, 0], [0, 4, 1, 5, 2, 6, 3, 7])  # interleaved pairs
    np.testing.assert_array_equal(gguf_io.unpermute_rows(gguf_rows, 1), rows)
    w = np.random.default_rng(0).normal(size=(2 * 3 * 16, 5))
    np.testing.assert_array_equal(gguf_io.unpermute_rows(llama_cpp_permute(w, 6), 6), w)


@pytest.mark.slow
@pytest.mark.parametrize("tie", [False, True])
def test_llama_gguf_gives_back_the_hf_tensors_and_logits(tmp_path, tie):
    model, state = _hf_llama(tie)
    path = write_llama_from_hf(tmp_path / "l.gguf", state, CONFIG)
    config, tensors = gguf_io.load_gguf_hf(path)
    assert sorted(tensors) == sorted(state)
    for name, value in state.items():
        np.testing.assert_array_equal(tensors[name], value, err_msg=name)
    assert config["tie_word_embeddings"] == tie
    for key, value in CONFIG.items():
        assert config[key] == pytest.approx(value), key
    cfg, params = gguf_io.load_gguf(path)
    ids = np.random.default_rng(0).integers(1, 96, size=(2, 9))
    got = np.asarray(Decoder(cfg).apply({"params": params}, {"decoder_input_tokens": jnp.asarray(ids)}))
    with torch.no_grad():
        want = model(torch.tensor(ids)).logits.numpy()
    assert np.abs(want).max() > 1.0
    assert np.abs(got - want).max() <= 1e-4


@pytest.mark.slow
def test_llama_q8_0_equals_transformers_gguf_loader(tmp_path):
    from transformers import AutoModelForCausalLM

    _, state = _hf_llama()
    path = write_llama_from_hf(tmp_path / "q.gguf", state, CONFIG, qtype="Q8_0")
    config, tensors = gguf_io.load_gguf_hf(path)
    ref = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file="q.gguf")
    want = {k: v.float().numpy() for k, v in ref.state_dict().items()}
    assert sorted(tensors) == sorted(want)
    for name, value in want.items():
        np.testing.assert_array_equal(tensors[name], value, err_msg=name)
    q = state["model.layers.0.self_attn.q_proj.weight"]  # quantized, but close to the original
    assert np.abs(tensors["model.layers.0.self_attn.q_proj.weight"] - q).max() < 0.02
    ref_config = ref.config.to_dict()
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "head_dim", "rms_norm_eps", "max_position_embeddings", "tie_word_embeddings"):
        assert config[key] == ref_config[key], key


def test_cli_convert_from_gguf(tmp_path, capsys):
    _, state = _hf_llama()
    path = write_llama_from_hf(tmp_path / "l.gguf", state, CONFIG)
    assert main(["convert", "--from-gguf", str(path), "--out", str(tmp_path / "ckpt"), "--scan-layers"]) == 0
    assert "parameters" in capsys.readouterr().out
    config, params = params_io.load_checkpoint(tmp_path / "ckpt")
    want_config, want = gguf_io.load_gguf(path, scan_layers=True)
    assert config == want_config and config.scan_layers
    flat, want_flat = params_io.flatten_params(params), params_io.flatten_params(want)
    assert sorted(flat) == sorted(want_flat)
    for name in flat:
        np.testing.assert_array_equal(flat[name], want_flat[name], err_msg=name)


@pytest.mark.parametrize("what", ["not gguf", "gemma3 without the Gemma model", "two sources"])
def test_cli_bad_gguf_exit_2_one_line_nothing_written(tmp_path, capsys, what):
    import importlib.util

    path = tmp_path / "m.gguf"
    argv = ["convert", "--from-gguf", str(path), "--out", str(tmp_path / "ckpt")]
    if what == "not gguf":
        path.write_text("hello")
        message = "m.gguf: not a GGUF file"
    elif what == "gemma3 without the Gemma model":
        if importlib.util.find_spec("flan_jax.models.hf_gemma") is not None:
            pytest.skip("the Gemma converter is installed")
        write_gemma3(path)
        message = "m.gguf: gemma3 checkpoints need the Gemma model"
    else:
        argv += ["--from-hf", str(tmp_path)]
        message = "convert: give one of"
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "ckpt").exists()
