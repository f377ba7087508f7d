"""`flan-jax convert --to-hf --from MODEL_DIR`: what training wrote (a full fine-tuning model_dir
with --base, a LoRA model_dir alone) exports to a HF directory whose transformers model gives the
tuned model's logits, with the base's special token ids in config.json and generation_config.json;
a full fine-tuning model_dir without --base is one error line."""
import json

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from flan_jax.cli import main  # noqa: E402
from flan_jax.models import lora, params_io  # noqa: E402
from flan_jax.train.optim import adamw  # noqa: E402
from flan_jax.train.train import train  # noqa: E402

LENGTHS = {"inputs": 6, "targets": 6}
CFG = lora.LoraConfig(rank=4, alpha=8.0, targets=("heads", "kv_heads", "mlp"))


def _hf_base(tmp_path):
    """A tiny random Llama with Llama's own ids (bos 1, eos 2), imported as a params dir."""
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=1, head_dim=8,
                                   bos_token_id=1, eos_token_id=2)
    transformers.LlamaForCausalLM(cfg).save_pretrained(tmp_path / "hf_base", safe_serialization=True)
    assert main(["convert", "--from-hf", str(tmp_path / "hf_base"), "--out", str(tmp_path / "base")]) == 0
    return tmp_path / "base"


def _tune(tmp_path, base, name, **kw):
    return train(mixture="synthetic", feature_lengths=LENGTHS, batch_size=8, num_steps=2,
                 model_dir=str(tmp_path / name), pretrained=str(base), optimizer=adamw(3e-2, weight_decay=0.0),
                 **kw)


def _hf_logits(hf_dir, tokens):
    model = transformers.LlamaForCausalLM.from_pretrained(hf_dir).eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor(tokens, dtype=torch.long)).logits.numpy()


def _check_token_ids(hf_dir):
    config = json.loads((hf_dir / "config.json").read_text())
    generation = json.loads((hf_dir / "generation_config.json").read_text())
    for ids in (config, generation):
        assert (ids["bos_token_id"], ids["eos_token_id"]) == (1, 2)  # the base's, not flan_jax's 0/1


TOKENS = np.random.default_rng(1).integers(3, 64, (2, 9)).astype(np.int32)


@pytest.mark.slow
def test_full_fine_tuning_model_dir_exports_the_tuned_model(tmp_path, capsys):
    base = _hf_base(tmp_path)
    config, base_params = params_io.load_checkpoint(base)
    module = params_io.build_model(config)
    result = _tune(tmp_path, base, "ft")
    tuned = jax.device_get(result.state.params)
    want = np.asarray(module.apply({"params": tuned}, {"decoder_input_tokens": TOKENS}))
    before = np.asarray(module.apply({"params": base_params}, {"decoder_input_tokens": TOKENS}))
    assert np.abs(want - before).max() > 1e-3  # the tuning changed the model
    capsys.readouterr()
    assert main(["convert", "--to-hf", "--from", str(tmp_path / "ft"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stores no model config" in err[0] and not (tmp_path / "x").exists()
    assert main(["convert", "--to-hf", "--from", str(tmp_path / "ft"), "--base", str(base),
                 "--out", str(tmp_path / "hf_ft")]) == 0
    np.testing.assert_allclose(_hf_logits(tmp_path / "hf_ft", TOKENS), want, atol=1e-4, rtol=0)
    _check_token_ids(tmp_path / "hf_ft")


@pytest.mark.slow
def test_lora_model_dir_exports_base_plus_adapters(tmp_path):
    base = _hf_base(tmp_path)
    config, base_params = params_io.load_checkpoint(base)
    module = params_io.build_model(config)
    result = _tune(tmp_path, base, "lora", lora=CFG)
    adapters = jax.device_get(result.state.params)
    want = np.asarray(lora.apply(module, base_params, adapters, CFG, {"decoder_input_tokens": TOKENS}))
    assert main(["convert", "--to-hf", "--from", str(tmp_path / "lora"), "--out", str(tmp_path / "hf_lora")]) == 0
    np.testing.assert_allclose(_hf_logits(tmp_path / "hf_lora", TOKENS), want, atol=1e-4, rtol=0)
    _check_token_ids(tmp_path / "hf_lora")


@pytest.mark.slow
def test_gemma_export_writes_its_generation_config(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
    from test_hf_gemma import make_hf_gemma  # tests/models: a tiny random Gemma3ForCausalLM

    hf = make_hf_gemma()
    hf.save_pretrained(tmp_path / "hf_gemma", safe_serialization=True)
    assert main(["convert", "--from-hf", str(tmp_path / "hf_gemma"), "--out", str(tmp_path / "g")]) == 0
    assert main(["convert", "--to-hf", "--from", str(tmp_path / "g"), "--out", str(tmp_path / "g_hf")]) == 0
    generation = json.loads((tmp_path / "g_hf" / "generation_config.json").read_text())
    ids = {k: getattr(hf.config, k) for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    assert {k: generation[k] for k in ids} == ids
    loaded = transformers.GenerationConfig.from_pretrained(tmp_path / "g_hf")
    assert (loaded.bos_token_id, loaded.eos_token_id) == (ids["bos_token_id"], ids["eos_token_id"])
