"""Rank classification picks the argmax of independently computed option log-likelihoods."""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.errors import FlanJaxError
from flan_jax.eval import rank_classification as rc
from flan_jax.models.decoder import Decoder, DecoderConfig
from flan_jax.models.t5 import T5, T5Config

LENGTHS = {"inputs": 8, "targets": 6}


class CharVocab:
    """Stand-in vocabulary: each character a -> id 2 + (ord - 97) (ids 2..27)."""

    def encode(self, text):
        return [2 + ord(c) - 97 for c in text]


EXAMPLES = [
    {"inputs": [5, 9, 3], "options": [b"yes", b"no"]},
    {"inputs": [11, 2, 7, 7], "options": ["ab", "ba", "abc"]},
    {"inputs": [4], "options": ["z", "zz"]},
]


def _model(kind):
    if kind == "t5":
        return T5(T5Config(vocab_size=32, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32,
                           num_encoder_layers=1, num_decoder_layers=1))
    return Decoder(DecoderConfig(vocab_size=32, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8,
                                 mlp_dim=32, num_layers=1, prefix_lm=kind == "prefix_lm"))


def _params(model):
    batch = {"decoder_input_tokens": jnp.ones((1, 4), jnp.int32),
             "encoder_input_tokens": jnp.ones((1, 4), jnp.int32)}
    params = nn.meta.unbox(model.init(jax.random.PRNGKey(3), batch)["params"])
    return jax.tree.map(lambda x: 3 * x if x.ndim == 2 else x, params)  # peakier distributions


def _pad(row, width=16):
    return jnp.asarray([list(row) + [0] * (width - len(row))])


def _reference_score(model, forward, params, inputs, option):
    """log p(option + EOS | inputs): one example alone, a plain forward, log-softmax by hand.
    The row is zero-padded on the right to a fixed width (one jit); causal attention and the
    encoder's padding mask keep the padding invisible to the scored positions."""
    target = CharVocab().encode(option) + [1]
    if model.FEATURE_FORMAT == "enc_dec":
        batch = {"encoder_input_tokens": _pad(inputs), "decoder_input_tokens": _pad([0] + target[:-1])}
        offset = 0
    else:
        seq = list(inputs) + target
        batch = {"decoder_input_tokens": _pad([0] + seq[:-1])}
        if model.FEATURE_FORMAT == "prefix_lm":
            batch["decoder_causal_attention"] = _pad([1] * (len(inputs) + 1))
        offset = len(inputs)
    logits = np.asarray(forward(params, batch)[0], np.float64)
    top = logits.max(-1, keepdims=True)
    logp = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
    return sum(logp[offset + i, t] for i, t in enumerate(target)), len(target)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["t5", "decoder", "prefix_lm"])
def test_choice_is_argmax_of_independent_option_scores(kind):
    model = _model(kind)
    params = _params(model)
    result = rc.rank_classify(model, params, EXAMPLES, vocabulary=CharVocab(), lengths=LENGTHS,
                              batch_size=3)  # 7 rows: the last batch is padded
    forward = jax.jit(lambda p, b: model.apply({"params": p}, b))
    for i, ex in enumerate(EXAMPLES):
        ref = [_reference_score(model, forward, params, ex["inputs"], rc._text(o)) for o in ex["options"]]
        np.testing.assert_allclose(result.log_likelihoods[i], [s for s, _ in ref], rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(result.num_tokens[i], [n for _, n in ref])
        assert result.predictions[i] == int(np.argmax([s for s, _ in ref]))
    assert result.options[1] == ["ab", "ba", "abc"]


@pytest.mark.slow
def test_mesh_sharded_scores_equal_unsharded():
    from flan_jax.train.mesh import make_mesh

    model = _model("decoder")
    params = _params(model)
    plain = rc.rank_classify(model, params, EXAMPLES, vocabulary=CharVocab(), lengths=LENGTHS, batch_size=8)
    sharded = rc.rank_classify(model, params, EXAMPLES, vocabulary=CharVocab(), lengths=LENGTHS,
                               batch_size=8, mesh=make_mesh((-1, 1, 1)))
    for a, b in zip(plain.log_likelihoods, sharded.log_likelihoods):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    with pytest.raises(FlanJaxError, match="not divisible by the 8 batch shards"):
        rc.rank_classify(model, params, EXAMPLES, vocabulary=CharVocab(), lengths=LENGTHS,
                         batch_size=6, mesh=make_mesh((-1, 1, 1)))


@dataclasses.dataclass(frozen=True)
class BigramModel:
    """A hand-set model: the logits at a position depend only on the token read there, so every
    option's log-likelihood is a product of table entries (p(next | current))."""

    FEATURE_FORMAT = "decoder"

    def apply(self, variables, batch):
        return variables["params"]["table"][batch["decoder_input_tokens"]]


def test_length_normalization_changes_the_choice():
    # inputs end in token 6. option "a" = [2] + EOS: p(2 | 6) = 0.5, p(EOS | 2) = 0.5
    #   -> sum log p = -1.386, per token -0.693
    # option "bcd" = [3, 4, 5] + EOS: p(3 | 6) = 0.2, then p = 0.9 three times
    #   -> sum -1.925 (loses), per token -0.481 (wins)
    probs = np.full((8, 8), 1e-4)
    probs[6, 2], probs[6, 3], probs[2, 1] = 0.5, 0.2, 0.5
    probs[3, 4], probs[4, 5], probs[5, 1] = 0.9, 0.9, 0.9
    probs[:, 0] += 1 - probs.sum(-1)  # the rest of each row's mass on the pad id
    table = jnp.log(jnp.asarray(probs, jnp.float32))
    model, params = BigramModel(), {"table": table}
    examples = [{"inputs": [7, 6], "options": ["a", "bcd"]}]
    plain = rc.rank_classify(model, params, examples, vocabulary=CharVocab(), lengths=LENGTHS, batch_size=2)
    normalized = rc.rank_classify(model, params, examples, vocabulary=CharVocab(), lengths=LENGTHS,
                                  batch_size=2, length_normalize=True)
    lp = np.log(probs)
    want_a = lp[6, 2] + lp[2, 1]
    want_bcd = lp[6, 3] + lp[3, 4] + lp[4, 5] + lp[5, 1]
    np.testing.assert_allclose(plain.log_likelihoods[0], [want_a, want_bcd], rtol=1e-5)
    assert want_a > want_bcd and want_a / 2 < want_bcd / 4  # the constructed case
    assert plain.predicted_options == ["a"]
    assert normalized.predicted_options == ["bcd"]


def test_example_without_options_is_an_error_naming_the_task():
    model = BigramModel()
    params = {"table": jnp.zeros((32, 32))}
    with pytest.raises(rc.NoOptionsError, match="task 'flan_mini.mini_add:eval', example 1: no answer options"):
        rc.rank_classify(model, params, [EXAMPLES[0], {"inputs": [3], "options": []}],
                         vocabulary=CharVocab(), lengths=LENGTHS,
                         where="task 'flan_mini.mini_add:eval', example")
    with pytest.raises(FlanJaxError, match="no examples"):
        rc.rank_classify(model, params, [], vocabulary=CharVocab(), lengths=LENGTHS)
