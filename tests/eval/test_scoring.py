"""Scoring: hand-computed log-likelihoods, and `flan-jax score` against HF transformers' loss."""
import numpy as np
import pytest
import sentencepiece as spm
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from flan_jax.cli import main
from flan_jax.data.vocab import default_vocabulary_path
from flan_jax.eval.scoring import sequence_log_likelihood
from flan_jax.models.hf_llama import load_hf_llama
from flan_jax.models.params_io import save_checkpoint


class FixedLogits:
    """A stand-in model whose logits are given; scoring must only read the target fields."""

    FEATURE_FORMAT = "enc_dec"

    def __init__(self, logits):
        self.logits = np.asarray(logits, np.float32)

    def apply(self, variables, batch):
        return self.logits


def test_sums_weighted_target_log_probs_by_hand():
    logits = [[[0.0, 0.0, 0.0], [1.0, 2.0, 0.0], [5.0, 5.0, 5.0]]]  # [1, 3, 3]
    batch = {
        "decoder_target_tokens": np.array([[2, 1, 0]]),
        "decoder_loss_weights": np.array([[0, 1, 0]]),
        "encoder_input_tokens": np.array([[4, 4]]),
    }
    got = sequence_log_likelihood(FixedLogits(logits), {}, batch)
    want = 2.0 - np.log(np.exp(1.0) + np.exp(2.0) + 1.0)  # log p(1) at position 1 only
    np.testing.assert_allclose(np.asarray(got), [want], rtol=1e-6)
    batch["decoder_loss_weights"] = np.array([[1, 1, 0]])
    got = sequence_log_likelihood(FixedLogits(logits), {}, batch)
    np.testing.assert_allclose(np.asarray(got), [want + np.log(1 / 3)], rtol=1e-6)


def test_missing_target_fields_are_named():
    with pytest.raises(KeyError, match="decoder_loss_weights"):
        sequence_log_likelihood(FixedLogits(np.zeros((1, 1, 2))), {}, {"decoder_target_tokens": np.ones((1, 1))})


def _hf_target_log_likelihood(model, inputs, targets):
    ids = [0] + inputs + targets  # BOS = 0, as decoder_input_tokens starts
    labels = [-100] * (1 + len(inputs)) + targets
    with torch.no_grad():
        loss = model(torch.tensor([ids]), labels=torch.tensor([labels])).loss
    return -float(loss) * len(targets)


@pytest.mark.slow
def test_score_cli_equals_hf_loss_derived_log_likelihood(tmp_path, capsys):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=1024, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(10.0)  # a peaked distribution, so a wrong alignment changes the numbers
    model.save_pretrained(tmp_path / "hf", safe_serialization=True)
    save_checkpoint(tmp_path / "ckpt", *load_hf_llama(tmp_path / "hf"))
    vocab = str(default_vocabulary_path())
    sp = spm.SentencePieceProcessor(model_file=vocab)
    question, options = "Is the sky blue on a clear day?", ["yes", "no, never"]

    capsys.readouterr()
    assert main(["score", "--checkpoint", str(tmp_path / "ckpt"), "--vocab", vocab,
                 "--inputs", question, "--targets", *options]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    got = [float(line.split("\t")[0]) for line in lines]
    want = [_hf_target_log_likelihood(model, sp.encode(question), sp.encode(o) + [1]) for o in options]
    assert len(set(np.round(want, 3))) == 2
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    assert main(["score", "--checkpoint", str(tmp_path / "ckpt"), "--vocab", vocab,
                 "--inputs", question, "--targets", options[0]]) == 0
    np.testing.assert_allclose(float(capsys.readouterr().out), want[0], rtol=1e-4, atol=1e-4)


def test_score_cli_names_a_missing_checkpoint(tmp_path, capsys):
    vocab = str(default_vocabulary_path())
    assert main(["score", "--checkpoint", str(tmp_path / "none"), "--vocab", vocab,
                 "--inputs", "a", "--targets", "b"]) == 2
    assert "none/model_config.json: missing" in capsys.readouterr().err
