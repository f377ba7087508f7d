"""`flan-jax convert --adapters`: LoRA adapters merged into their base and exported to HF give
the logits of transformers' model equal to our base-plus-adapters forward pass (Llama-style
decoder, T5 and Gemma 3); a merged flan_jax checkpoint too; bad adapter directories are one line."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from flan_jax.cli import main  # noqa: E402
from flan_jax.models import lora, params_io  # noqa: E402
from flan_jax.train import lora_training  # noqa: E402

CFG = lora.LoraConfig(rank=4, alpha=8.0, targets=("heads", "kv_heads", "mlp"))


def _hf_llama():
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=1, head_dim=8)
    return transformers.LlamaForCausalLM(cfg).eval()


def _hf_t5():
    torch.manual_seed(0)
    cfg = transformers.T5Config(vocab_size=64, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=2,
                                num_heads=2, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                                dropout_rate=0.0)
    model = transformers.T5ForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        model.lm_head.weight = torch.nn.Parameter(torch.randn(64, 16))
    return model


def _batches(fmt):
    rng = np.random.default_rng(1)
    dec = rng.integers(2, 64, (2, 12)).astype(np.int32)
    if fmt == "enc_dec":
        dec[:, 0] = 0
        return {"encoder_input_tokens": rng.integers(2, 64, (2, 10)).astype(np.int32), "decoder_input_tokens": dec}
    return {"decoder_input_tokens": dec}


def _hf_logits(model, batch):
    with torch.no_grad():
        if "encoder_input_tokens" in batch:
            return model(input_ids=torch.tensor(batch["encoder_input_tokens"], dtype=torch.long),
                         decoder_input_ids=torch.tensor(batch["decoder_input_tokens"], dtype=torch.long)).logits.numpy()
        return model(input_ids=torch.tensor(batch["decoder_input_tokens"], dtype=torch.long)).logits.numpy()


def _base_and_adapters(tmp_path, hf_model):
    hf_model.save_pretrained(tmp_path / "hf_base", safe_serialization=True)
    assert main(["convert", "--from-hf", str(tmp_path / "hf_base"), "--out", str(tmp_path / "base")]) == 0
    config, base = params_io.load_checkpoint(tmp_path / "base")
    module = params_io.build_model(config)
    batch = {k: jnp.asarray(v) for k, v in _batches(module.FEATURE_FORMAT).items()}
    adapters = lora.init_adapters(module, batch, CFG, jax.random.PRNGKey(3))
    # a trained-looking adapter: B non-zero (a fresh one is zero and would test nothing)
    adapters = {p: {"lora_a": d["lora_a"], "lora_b": 0.1 * jax.random.normal(jax.random.PRNGKey(i), d["lora_b"].shape)}
                for i, (p, d) in enumerate(sorted(adapters.items()))}
    lora_training.save_adapters(tmp_path / "adapters", adapters, CFG, str(tmp_path / "base"))
    want = np.asarray(lora.apply(module, base, adapters, CFG, batch))  # unmerged: base + branches
    return module, base, batch, want


def _hf_gemma():
    from test_hf_gemma import make_hf_gemma  # tests/models: a tiny random Gemma3ForCausalLM

    return make_hf_gemma()


HF = {"llama": (_hf_llama, "LlamaForCausalLM"), "t5": (_hf_t5, "T5ForConditionalGeneration"),
      "gemma3": (_hf_gemma, "Gemma3ForCausalLM")}


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(HF))
def test_merged_hf_export_matches_base_plus_adapters(tmp_path, family):
    make, cls_name = HF[family]
    module, base, batch, want = _base_and_adapters(tmp_path, make())
    no_adapter = np.asarray(module.apply({"params": base}, batch))
    assert np.abs(want - no_adapter).max() > 1e-2  # the adapters change the output
    assert main(["convert", "--adapters", str(tmp_path / "adapters"), "--to-hf", "--out", str(tmp_path / "hf")]) == 0
    exported = getattr(transformers, cls_name).from_pretrained(tmp_path / "hf").eval()
    exported.config._attn_implementation = "eager"  # as tests/models/test_hf_gemma.py
    np.testing.assert_allclose(_hf_logits(exported, {k: np.asarray(v) for k, v in batch.items()}), want,
                               atol=1e-4, rtol=0)
    # the merged flan_jax checkpoint gives the same logits
    assert main(["convert", "--adapters", str(tmp_path / "adapters"), "--out", str(tmp_path / "merged")]) == 0
    _, merged = params_io.load_checkpoint(tmp_path / "merged")
    np.testing.assert_allclose(np.asarray(module.apply({"params": merged}, batch)), want, atol=1e-5, rtol=0)


def test_bad_adapter_inputs_are_one_line(tmp_path, capsys):
    module, base, batch, _ = _base_and_adapters(tmp_path, _hf_llama())
    capsys.readouterr()
    assert main(["convert", "--adapters", str(tmp_path / "nowhere"), "--to-hf", "--out", str(tmp_path / "o1")]) == 2
    assert "not an adapter directory" in capsys.readouterr().err
    # adapters of another model do not fit this base
    other = {"layers_9/attention/query": {"lora_a": np.zeros((16, 4), np.float32),
                                         "lora_b": np.zeros((4, 2, 8), np.float32)}}
    lora_training.save_adapters(tmp_path / "other", other, CFG, str(tmp_path / "base"))
    assert main(["convert", "--adapters", str(tmp_path / "other"), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{tmp_path / 'other'}: the adapters do not fit the base" in err[0]
    lora_training.save_adapters(tmp_path / "nobase", other, CFG, None)
    assert main(["convert", "--adapters", str(tmp_path / "nobase"), "--out", str(tmp_path / "o3")]) == 2
    assert "no base checkpoint recorded" in capsys.readouterr().err
    assert main(["convert", "--adapters", str(tmp_path / "adapters"), "--from-hf", "x", "--out", str(tmp_path / "o4")]) == 2
    assert "not --from-hf" in capsys.readouterr().err
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))
