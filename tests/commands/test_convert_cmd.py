"""`flan-jax convert` end to end through the CLI: HF -> checkpoint -> HF, and bad inputs."""
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from transformers import LlamaConfig, LlamaForCausalLM

from flan_jax.cli import main
from flan_jax.models import params_io


def _hf_llama(path):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=8)
    LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)


@pytest.mark.parametrize("scan", [False, True])
def test_round_trip_through_cli_reproduces_hf_tensors(tmp_path, scan, capsys):
    _hf_llama(tmp_path / "hf")
    argv = ["convert", "--from-hf", str(tmp_path / "hf"), "--out", str(tmp_path / "ckpt")]
    assert main(argv + (["--scan-layers"] if scan else [])) == 0
    config = params_io.load_config(tmp_path / "ckpt")
    assert type(config).__name__ == "DecoderConfig" and config.scan_layers == scan
    assert main(["convert", "--to-hf", "--from", str(tmp_path / "ckpt"), "--out", str(tmp_path / "back")]) == 0
    before = load_file(str(tmp_path / "hf" / "model.safetensors"))
    after = load_file(str(tmp_path / "back" / "model.safetensors"))
    assert sorted(before) == sorted(after)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    assert "parameters" in capsys.readouterr().out


def _break(tmp_path, how):
    d = tmp_path / "hf"
    _hf_llama(d)
    if how == "missing config":
        (d / "config.json").unlink()
    elif how == "unknown architecture":
        cfg = json.loads((d / "config.json").read_text())
        cfg.update(model_type="gpt2", architectures=["GPT2LMHeadModel"])
        (d / "config.json").write_text(json.dumps(cfg))
    elif how == "bin only":
        (d / "model.safetensors").rename(d / "pytorch_model.bin")
    elif how == "missing tensor":
        from safetensors.numpy import save_file

        t = load_file(str(d / "model.safetensors"))
        del t["model.layers.0.self_attn.k_proj.weight"]
        save_file(t, str(d / "model.safetensors"))
    elif how == "truncated":
        data = (d / "model.safetensors").read_bytes()
        (d / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif how == "wrong shape":
        from safetensors.numpy import save_file

        t = load_file(str(d / "model.safetensors"))
        t["model.embed_tokens.weight"] = np.zeros((63, 16), np.float32)
        save_file(t, str(d / "model.safetensors"))
    return d


@pytest.mark.parametrize(
    "how, message",
    [
        ("missing config", "config.json: missing"),
        ("unknown architecture", "config.json: unsupported model_type 'gpt2'"),
        ("bin only", "pytorch_model.bin: pickled weights are refused"),
        ("missing tensor", "missing tensor 'model.layers.0.self_attn.k_proj.weight'"),
        ("wrong shape", "model.safetensors: tensor 'model.embed_tokens.weight' has shape [63, 16]"),
        ("truncated", "model.safetensors: not a readable safetensors file"),
    ],
)
def test_bad_hf_dirs_exit_2_with_one_line_and_leave_nothing(tmp_path, capsys, how, message):
    d = _break(tmp_path, how)
    out = tmp_path / "ckpt"
    capsys.readouterr()  # drop transformers' progress output
    assert main(["convert", "--from-hf", str(d), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]


def test_existing_output_and_bad_flag_combinations_are_refused(tmp_path, capsys):
    _hf_llama(tmp_path / "hf")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("keep me")
    capsys.readouterr()
    assert main(["convert", "--from-hf", str(tmp_path / "hf"), "--out", str(tmp_path / "taken")]) == 2
    assert (tmp_path / "taken" / "file").read_text() == "keep me"
    assert main(["convert", "--to-hf", "--out", str(tmp_path / "x")]) == 2
    assert main(["convert", "--to-hf", "--from", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "not an empty directory" in err and "--from CKPT is required" in err and "nope: does not exist" in err
    assert not (tmp_path / "x").exists()


def test_t5_dispatches_to_hf_t5_and_round_trips(tmp_path):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(vocab_size=64, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1,
                      num_heads=2, feed_forward_proj="gated-gelu", tie_word_embeddings=False)
    T5ForConditionalGeneration(config).save_pretrained(tmp_path / "hf", safe_serialization=True)
    assert main(["convert", "--from-hf", str(tmp_path / "hf"), "--out", str(tmp_path / "ckpt")]) == 0
    assert type(params_io.load_config(tmp_path / "ckpt")).__name__ == "T5Config"
    assert main(["convert", "--to-hf", "--from", str(tmp_path / "ckpt"), "--out", str(tmp_path / "back")]) == 0
    ids = torch.tensor([[5, 9, 3, 1]])
    with torch.no_grad():
        want = T5ForConditionalGeneration.from_pretrained(tmp_path / "hf")(input_ids=ids, decoder_input_ids=ids).logits
        got = T5ForConditionalGeneration.from_pretrained(tmp_path / "back")(input_ids=ids, decoder_input_ids=ids).logits
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_checkpoint_round_trip_and_half_written_output_is_removed(tmp_path, monkeypatch):
    from flan_jax.errors import FlanJaxError
    from flan_jax.models.decoder import DecoderConfig

    cfg = DecoderConfig(vocab_size=8, emb_dim=4, num_heads=2, num_kv_heads=1, head_dim=2, mlp_dim=6, num_layers=1)
    params = {"embed": {"embedding": np.arange(32, dtype=np.float32).reshape(8, 4)}, "final_norm": {"scale": np.ones(4)}}
    params_io.save_checkpoint(tmp_path / "ok", cfg, params)
    loaded_cfg, loaded = params_io.load_checkpoint(tmp_path / "ok")
    assert loaded_cfg == cfg
    np.testing.assert_array_equal(loaded["embed"]["embedding"], params["embed"]["embedding"])

    import safetensors.numpy

    def broken_save(tensors, path, metadata=None):
        open(path, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", broken_save)
    with pytest.raises(OSError, match="disk full"):
        params_io.save_checkpoint(tmp_path / "bad", cfg, params)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok"]

    meta = json.loads((tmp_path / "ok" / "model_config.json").read_text())
    meta["config"]["num_experts"] = 4
    (tmp_path / "ok" / "model_config.json").write_text(json.dumps(meta))
    with pytest.raises(FlanJaxError, match=r"model_config\.json: unknown DecoderConfig fields \['num_experts'\]"):
        params_io.load_checkpoint(tmp_path / "ok")
    meta["family"] = "rnn"
    (tmp_path / "ok" / "model_config.json").write_text(json.dumps(meta))
    with pytest.raises(FlanJaxError, match="unknown model family 'rnn'"):
        params_io.load_checkpoint(tmp_path / "ok")
