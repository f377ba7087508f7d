"""Scoring: hand-computed log-likelihoods, and `flan-jax score` against HF transformers' loss."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sentencepiece as spm
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from flan_jax.cli import main
from flan_jax.data.features.vocab import default_vocabulary_path
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


@pytest.mark.parametrize("family", ["decoder", "gemma"])
def test_head_at_target_positions_scores_like_the_full_logits(family):
    """rank classification's scorer with max_targets equals the full-logits scorer."""
    import flax.linen as nn
    from flan_jax.data.features import converters as features
    from flan_jax.eval import rank_classification
    if family == "decoder":
        from flan_jax.models.decoder import Decoder, DecoderConfig
        model = Decoder(DecoderConfig(vocab_size=64, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8,
                                      mlp_dim=32, num_layers=1, tie_embeddings=True))
    else:
        from flan_jax.models.gemma import Gemma3, Gemma3Config
        model = Gemma3(Gemma3Config(vocab_size=64, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8,
                                    mlp_dim=32, num_layers=2, sliding_window=4))
    rng = np.random.default_rng(0)
    examples = [{"inputs": rng.integers(3, 60, int(rng.integers(1, 8))).astype(np.int32),
                 "targets": np.r_[rng.integers(3, 60, int(rng.integers(0, 3))), 1].astype(np.int32)}
                for _ in range(6)]
    batch = features.convert_examples(examples, "decoder", {"inputs": 8, "targets": 4})
    params = nn.meta.unbox(model.init(jax.random.PRNGKey(0), {k: jnp.asarray(v) for k, v in batch.items()})["params"])
    full = rank_classification.score_fn(model)(params, batch)
    at = rank_classification.score_fn(model, 4)(params, batch)
    np.testing.assert_allclose(np.asarray(at[0]), np.asarray(full[0]), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(at[1]), np.asarray(full[1]))
