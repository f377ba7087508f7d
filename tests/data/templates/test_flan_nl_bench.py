"""bench/flan_nl_base_zero_shot.py: the cached, prefix-shared option scoring equals the plain
sum of log-probabilities from one full forward pass per (prompt, option), on a tiny random
Gemma 3 model from transformers."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

BENCH = Path(__file__).resolve().parents[3] / "bench" / "flan_nl_base_zero_shot.py"


def _bench():
    spec = importlib.util.spec_from_file_location("flan_nl_base_zero_shot", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_gemma3(sliding_window: int):
    config = transformers.Gemma3TextConfig(
        vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16,
        sliding_window=sliding_window, max_position_embeddings=128,
        final_logit_softcapping=30.0)
    torch.manual_seed(0)
    return transformers.Gemma3ForCausalLM(config).eval()


def _reference(model, prompt, cont, eos):
    """log p(cont | prompt) summed, and log p(eos | prompt + cont), from one full forward."""
    ids = torch.tensor([prompt + cont])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    total = sum(float(logp[len(prompt) - 1 + j, t]) for j, t in enumerate(cont))
    return total, float(logp[len(prompt) + len(cont) - 1, eos])


@pytest.mark.slow
@pytest.mark.parametrize("sliding_window", [64, 8])  # prompt of 12 tokens: inside / beyond it
def test_cached_scores_equal_full_forward(sliding_window):
    bench = _bench()
    model = _tiny_gemma3(sliding_window)
    prompt = [2, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]
    # shared prefixes ([5], [5, 6]) and different lengths, as options behind a separator have
    conts = [[5, 6, 7], [5, 6], [5, 9, 10, 30], [40]]
    got = bench.continuation_logprobs(model, prompt, conts, eos=1)
    for cont, (total, eos_logp) in zip(conts, got):
        ref_total, ref_eos = _reference(model, prompt, cont, 1)
        assert total == pytest.approx(ref_total, abs=1e-4)
        assert eos_logp == pytest.approx(ref_eos, abs=1e-4)
