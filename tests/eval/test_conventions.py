"""Scoring conventions (flan, lm_eval, acc_mutual_info) against log-likelihoods computed by hand.

The reference model is a table lookup over the last two tokens read: the logits at position t
are current[x_t] + previous[x_{t-1}], so log p(next | x_{t-1}, x_t) is a log-softmax written out
in numpy below, independently of the scoring code. (Two tokens, not one: with the lm_eval
convention every continuation starts with " ", and a one-token lookup would make the prompt's
effect on every option the same.) A real decoder is checked against a direct
forward pass of each (context, continuation) row.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.eval import conventions as conv
from flan_jax.eval import rank_classification as rc
from flan_jax.models.decoder import Decoder, DecoderConfig
from flan_jax.models.t5 import T5, T5Config

ALPHABET = "abcdefghijklmnopqrstuvwxyz ?:."
LENGTHS = {"inputs": 16, "targets": 8}


class CharVocab:
    """Each character of ALPHABET -> id 2 + its index (ids 2..31); EOS 1, padding/BOS 0."""

    eos_id = 1

    def encode(self, text):
        return [2 + ALPHABET.index(c) for c in text]


V = CharVocab()


class Lookup(nn.Module):
    """logits[b, t] = current[x[b, t]] + previous[x[b, t - 1]] (x[b, -1] = 0), x the input tokens."""

    FEATURE_FORMAT = "decoder"
    vocab: int = 32

    @nn.compact
    def __call__(self, batch):
        x = batch["decoder_input_tokens"]
        current = self.param("current", nn.initializers.normal(2.0), (self.vocab, self.vocab))
        previous = self.param("previous", nn.initializers.normal(2.0), (self.vocab, self.vocab))
        before = jnp.pad(x, ((0, 0), (1, 0)))[:, :-1]
        return current[x] + previous[before]


def _bigram():
    model = Lookup()
    params = model.init(jax.random.PRNGKey(0), {"decoder_input_tokens": jnp.zeros((1, 2), jnp.int32)})["params"]
    tables = (np.asarray(params["current"], np.float64), np.asarray(params["previous"], np.float64))
    return model, params, tables


def _logp(tables, before, prev, nxt):
    row = tables[0][prev] + tables[1][before]
    return row[nxt] - np.log(np.exp(row - row.max()).sum()) - row.max()


def _chain(tables, tokens, first=1):
    """sum over k >= first of log p(tokens[k] | tokens[k - 2], tokens[k - 1]); tokens start with
    BOS 0 and a missing token before it reads as 0."""
    padded = [0] + list(tokens)
    return sum(_logp(tables, padded[k - 1], padded[k], padded[k + 1]) for k in range(first, len(tokens)))


EXAMPLES = [
    {"inputs": V.encode("is it ok?"), "inputs_pretokenized": "is it ok?", "options": ["yes", "no"]},
    {"inputs": V.encode("pick:"), "inputs_pretokenized": "pick:", "options": ["ab", "b", "abc"]},
]


def _hand(table, convention, ex, option, prompt=True):
    """log p of the option's continuation, by hand (BOS 0 starts every row)."""
    if convention == "flan":
        context, cont = (ex["inputs"] if prompt else []), V.encode(option) + [1]
    else:
        context, cont = (V.encode(ex["inputs_pretokenized"]) if prompt else []), V.encode(" " + option)
    seq = [0] + list(context) + cont
    return _chain(table, seq, first=len(context) + 1)  # the positions that predict the continuation


@pytest.mark.parametrize("convention", ["flan", "lm_eval"])
def test_log_likelihoods_and_choices_equal_the_hand_computation(convention):
    model, params, table = _bigram()
    got = rc.score_options(model, params, EXAMPLES, vocabulary=V, lengths=LENGTHS, convention=convention,
                           mutual_info=True, batch_size=3)
    for i, ex in enumerate(EXAMPLES):
        opts = ex["options"]
        cond = np.array([_hand(table, convention, ex, o) for o in opts])
        uncond = np.array([_hand(table, convention, ex, o, prompt=False) for o in opts])
        np.testing.assert_allclose(got.log_likelihoods[i], cond, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got.unconditional[i], uncond, rtol=1e-5, atol=1e-5)
        assert got.choices["acc"][i] == int(np.argmax(cond))
        assert got.choices["acc_mutual_info"][i] == int(np.argmax(cond - uncond))
        if convention == "lm_eval":
            chars = np.array([len(o) for o in opts], np.float64)
            assert got.choices["acc_norm"][i] == int(np.argmax(cond / chars))
            np.testing.assert_array_equal(got.num_tokens[i], [len(o) + 1 for o in opts])  # " " + option
        else:
            assert "acc_norm" not in got.choices
            np.testing.assert_array_equal(got.num_tokens[i], [len(o) + 1 for o in opts])  # option + EOS


def test_choose_on_the_docstring_example():
    ll, uncond = np.array([-2.0, -1.2]), np.array([-3.0, -0.9])
    assert conv.choose("lm_eval", ll, ["yes", "no"], unconditional=uncond) == {
        "acc": 1, "acc_norm": 1, "acc_mutual_info": 0}
    # acc_norm divides by characters: -3.0 / 3 = -1.0 beats -2.4 / 2 = -1.2, acc prefers -2.4
    assert conv.choose("lm_eval", np.array([-3.0, -2.4]), ["abc", "de"])["acc_norm"] == 0
    assert conv.choose("lm_eval", np.array([-3.0, -2.4]), ["abc", "de"])["acc"] == 1
    # flan's length normalisation is per scored token
    assert conv.choose("flan", np.array([-3.0, -2.4]), ["abc", "de"], num_tokens=np.array([4, 2]),
                       length_normalize=True)["acc"] == 0
    assert conv.choose("flan", np.array([-1.0, -1.0]), ["a", "b"])["acc"] == 0  # ties: the first


def test_split_moves_trailing_space_and_slices_the_joint_encoding():
    pieces = {"Q": 1, ":": 2, " yes": 3, " ": 4, "yes": 5, "  yes": 6}

    def encode(text):  # greedy longest match: " yes" is one token only when the space is there
        out = []
        while text:
            best = max((p for p in pieces if text.startswith(p)), key=len)
            out.append(pieces[best])
            text = text[len(best):]
        return out

    ctx, cont = conv.split_context_continuation("Q:", " yes", encode, "decoder")
    assert ctx.tolist() == [1, 2] and cont.tolist() == [3]
    ctx, cont = conv.split_context_continuation("Q: ", "yes", encode, "decoder")  # space moves
    assert ctx.tolist() == [1, 2] and cont.tolist() == [3]
    ctx, cont = conv.split_context_continuation("Q: ", "yes", encode, "enc_dec")  # separately
    assert ctx.tolist() == [1, 2, 4] and cont.tolist() == [5]


def test_bad_names_and_inputs_are_one_error():
    assert conv.check_conventions("flan, lm_eval") == ("flan", "lm_eval")
    with pytest.raises(conv.ConventionError, match="unknown scoring convention 'harness'"):
        conv.check_conventions("flan,harness")
    with pytest.raises(conv.ConventionError, match="no scoring convention"):
        conv.check_conventions("")
    model, params, _ = _bigram()
    with pytest.raises(conv.ConventionError, match="example 0: the lm_eval convention needs the prompt text"):
        rc.score_options(model, params, [{"inputs": [3], "options": ["a"]}], vocabulary=V, lengths=LENGTHS,
                         convention="lm_eval")
    with pytest.raises(conv.ConventionError, match="example 0: an empty answer option"):
        rc.score_options(model, params, [{"inputs": [3], "options": ["a", ""]}], vocabulary=V, lengths=LENGTHS)


def test_long_contexts_keep_their_end():
    model, params, table = _bigram()
    ex = {"inputs": V.encode("abcdefghijklmnopqrst"), "options": ["x"]}  # 20 > 16 input tokens
    got = rc.score_options(model, params, [ex], vocabulary=V, lengths=LENGTHS)
    kept = ex["inputs"][:16]  # flan keeps the beginning, as seqio (and rank_classify) do
    assert got.truncated_rows == 1
    np.testing.assert_allclose(got.log_likelihoods[0], [_chain(table, [0] + kept + V.encode("x") + [1], first=17)],
                               rtol=1e-5)
    ex["inputs_pretokenized"] = "abcdefghijklmnopqrst"  # lm_eval keeps the end, as the harness does
    got = rc.score_options(model, params, [ex], vocabulary=V, lengths=LENGTHS, convention="lm_eval")
    kept = V.encode("efghijklmnopqrst")
    np.testing.assert_allclose(got.log_likelihoods[0], [_chain(table, [0] + kept + V.encode(" x"), first=17)],
                               rtol=1e-5)


def _pad(row, width=24):
    """One row, zero-padded on the right to a fixed width (one jit compilation); causal
    attention and the padding masks keep the padding invisible to the scored positions."""
    return jnp.asarray([list(row) + [0] * (width - len(row))])


def _decoder_reference(forward, params, context, cont):
    seq = [0] + list(context) + list(cont)
    logits = np.asarray(forward(params, {"decoder_input_tokens": _pad(seq[:-1])})[0], np.float64)
    top = logits.max(-1, keepdims=True)
    logp = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
    start = len(context)
    return sum(logp[start + k, t] for k, t in enumerate(cont))


@pytest.fixture(scope="module")
def decoder():
    model = Decoder(DecoderConfig(vocab_size=32, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8,
                                  mlp_dim=32, num_layers=2))
    params = nn.meta.unbox(model.init(jax.random.PRNGKey(1), {"decoder_input_tokens": jnp.ones((1, 4), jnp.int32)})
                           ["params"])
    return model, params


@pytest.mark.slow
@pytest.mark.parametrize("convention", ["flan", "lm_eval"])
def test_real_decoder_with_a_shared_prompt_pass_equals_direct_forward(decoder, convention):
    """The decoder scores options from one prompt pass (prompt_sharing), the unconditional rows
    from an empty prompt: both equal a plain forward pass of each whole row."""
    model, params = decoder
    got = rc.score_options(model, params, EXAMPLES, vocabulary=V, lengths=LENGTHS, convention=convention,
                           mutual_info=True, batch_size=4)
    forward = jax.jit(lambda p, b: model.apply({"params": p}, b))
    for i, ex in enumerate(EXAMPLES):
        for k, o in enumerate(ex["options"]):
            if convention == "flan":
                ctx, cont = ex["inputs"], V.encode(o) + [1]
            else:
                ctx, cont = V.encode(ex["inputs_pretokenized"]), V.encode(" " + o)
            np.testing.assert_allclose(got.log_likelihoods[i][k], _decoder_reference(forward, params, ctx, cont),
                                       rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(got.unconditional[i][k], _decoder_reference(forward, params, [], cont),
                                       rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_t5_unconditional_reads_an_eos_encoder_input():
    model = T5(T5Config(vocab_size=32, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32,
                        num_encoder_layers=1, num_decoder_layers=1))
    batch = {"decoder_input_tokens": jnp.ones((1, 4), jnp.int32), "encoder_input_tokens": jnp.ones((1, 4), jnp.int32)}
    params = nn.meta.unbox(model.init(jax.random.PRNGKey(2), batch)["params"])
    got = rc.score_options(model, params, EXAMPLES[:1], vocabulary=V, lengths=LENGTHS, mutual_info=True)
    forward = jax.jit(lambda p, b: model.apply({"params": p}, b))
    for k, o in enumerate(EXAMPLES[0]["options"]):
        target = V.encode(o) + [1]
        b = {"encoder_input_tokens": _pad([1], 8), "decoder_input_tokens": _pad([0] + target[:-1], 8)}
        logits = np.asarray(forward(params, b)[0], np.float64)
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        np.testing.assert_allclose(got.unconditional[0][k], sum(logp[j, t] for j, t in enumerate(target)),
                                   rtol=1e-4, atol=1e-4)
