"""Decoding: cached search equals full recomputation, beam 1 = greedy, top_k=1 sampling = greedy,
nucleus filtering on a hand-computed case, CoT answer parsing."""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.errors import FlanJaxError
from flan_jax.eval import decode_search, decoding
from flan_jax.models.decoder import Decoder, DecoderConfig
from flan_jax.models.t5 import T5, T5Config

DEC = DecoderConfig(vocab_size=24, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8, mlp_dim=32,
                    num_layers=2)
ENC_DEC = T5Config(vocab_size=24, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32,
                   num_encoder_layers=2, num_decoder_layers=2)
INPUTS = [[5, 9, 3, 7], [11, 2], [4, 4, 6], [8]]
MAX_LEN = 6


def _model(kind):
    if kind == "t5":
        return T5(ENC_DEC)
    return Decoder(dataclasses.replace(DEC, prefix_lm=kind == "prefix_lm"))


def _params(model, scale=4.0):
    """Random params, scaled so the next-token distributions are peaked (EOS gets produced)."""
    batch = {"decoder_input_tokens": jnp.ones((1, 4), jnp.int32),
             "encoder_input_tokens": jnp.ones((1, 4), jnp.int32)}
    params = nn.meta.unbox(model.init(jax.random.PRNGKey(1), batch)["params"])
    return jax.tree.map(lambda x: x * scale if x.ndim == 2 else x, params)


def _uncached_greedy(model, params, inputs, max_len, forward):
    """Independent reference: one example, the whole sequence recomputed by a plain forward at
    every step (no cache). Rows are zero-padded to a fixed width so one jit serves all steps;
    the causal mask (and the encoder's padding mask) make the padding invisible."""
    width = 16
    out = []
    for _ in range(max_len):
        if model.FEATURE_FORMAT == "enc_dec":
            seq, read = [0] + out, len(out)
            batch = {"encoder_input_tokens": jnp.asarray([list(inputs) + [0] * (width - len(inputs))])}
        else:
            seq = [0] + list(inputs) + out
            read = len(seq) - 1
            batch = {}
            if model.FEATURE_FORMAT == "prefix_lm":
                prefix = [1] * (len(inputs) + 1)
                batch["decoder_causal_attention"] = jnp.asarray([prefix + [0] * (width - len(prefix))])
        batch["decoder_input_tokens"] = jnp.asarray([seq + [0] * (width - len(seq))])
        logits = forward(params, batch)
        token = int(jnp.argmax(logits[0, read]))
        if token == decoding.EOS_ID:
            break
        out.append(token)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["t5", "decoder", "prefix_lm"])
def test_cached_greedy_equals_uncached_recomputation(kind):
    model = _model(kind)
    params = _params(model)
    got = decoding.generate(model, params, INPUTS, input_length=5, batch_size=3,
                            config=decoding.DecodeConfig("greedy", max_decode_length=MAX_LEN))
    forward = jax.jit(lambda p, b: model.apply({"params": p}, b))
    want = [_uncached_greedy(model, params, x, MAX_LEN, forward) for x in INPUTS]
    assert got.tokens == want
    assert any(len(w) < MAX_LEN for w in want)  # EOS stops at least one sequence early
    assert any(len(w) > 0 for w in want)


def test_prompt_width_is_a_power_of_two_within_the_inputs_length():
    assert [decoding.prompt_width(n, 256) for n in (1, 16, 17, 41, 200, 300)] == [16, 16, 32, 64, 256, 256]
    assert decoding.prompt_width(41, 40) == 40 and decoding.prompt_width(3, 5) == 5


@pytest.mark.slow
def test_bucketed_length_sorted_greedy_equals_uncached_recomputation():
    """A long inputs length (rows cut to a 16-wide bucket) and batches taken shortest first give
    the same outputs, in the given order, as the independent uncached reference."""
    model = _model("decoder")
    params = _params(model)
    inputs = INPUTS + [[3, 3, 9, 10, 12], [7, 1 + 1]]
    got = decoding.generate(model, params, inputs, input_length=40, batch_size=2,
                            config=decoding.DecodeConfig("greedy", max_decode_length=MAX_LEN))
    forward = jax.jit(lambda p, b: model.apply({"params": p}, b))
    want = [_uncached_greedy(model, params, x, MAX_LEN, forward) for x in inputs]
    assert got.tokens == [w[:w.index(0)] if 0 in w else w for w in want]  # generate stops at a pad id too


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["t5", "decoder"])
def test_beam_one_and_top_k_one_equal_greedy(kind):
    model = _model(kind)
    params = _params(model)
    run = lambda cfg: decoding.generate(model, params, INPUTS, input_length=5, batch_size=4,  # noqa: E731
                                        config=cfg).tokens
    greedy = run(decoding.DecodeConfig("greedy", max_decode_length=MAX_LEN))
    assert run(decoding.DecodeConfig("beam", max_decode_length=MAX_LEN, beam_size=1, alpha=0.0)) == greedy
    assert run(decoding.DecodeConfig("sample", max_decode_length=MAX_LEN, top_k=1,
                                     temperature=1.5, seed=3)) == greedy


def _pad(row, width=16):
    return jnp.asarray([list(row) + [0] * (width - len(row))])


def _sequence_logp(model, forward, params, inputs, out):
    """log p(out + EOS | inputs) by one plain forward (the reference for beam scores); rows are
    zero-padded to a fixed width, invisible behind the causal / encoder padding masks."""
    target = list(out) + [decoding.EOS_ID]
    if model.FEATURE_FORMAT == "enc_dec":
        batch = {"encoder_input_tokens": _pad(inputs), "decoder_input_tokens": _pad([0] + target[:-1])}
        start = 0
    else:
        batch = {"decoder_input_tokens": _pad([0] + list(inputs) + target[:-1])}
        start = len(inputs)
    logp = np.asarray(jax.nn.log_softmax(forward(params, batch)[0]))
    return float(sum(logp[start + i, t] for i, t in enumerate(target)))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["t5", "decoder"])
def test_beam_search_score_is_penalised_log_likelihood_and_beats_greedy(kind):
    """A wrongly reordered cache (T5 keeps rows on axis 1, the decoder on axis 0) would make
    the returned sequence's log-likelihood differ from the score the search tracked."""
    model = _model(kind)
    params = _params(model, scale=3.0)
    cfg = decoding.DecodeConfig("beam", max_decode_length=MAX_LEN, beam_size=4, alpha=0.6)
    beam = decoding.generate(model, params, INPUTS, input_length=5, batch_size=4, config=cfg)
    greedy = decoding.generate(model, params, INPUTS, input_length=5, batch_size=4,
                               config=decoding.DecodeConfig("greedy", max_decode_length=MAX_LEN))
    forward = jax.jit(lambda p, b: model.apply({"params": p}, b))
    checked = 0
    for x, out, score, done, g, g_done in zip(INPUTS, beam.tokens, beam.scores, beam.finished,
                                              greedy.tokens, greedy.finished):
        if not done:
            continue  # unfinished hypothesis: no EOS in its log-likelihood
        lp = _sequence_logp(model, forward, params, x, out)
        penalty = ((5 + len(out) + 1) / 6) ** 0.6
        np.testing.assert_allclose(score, lp / penalty, rtol=1e-4)
        checked += 1
        if g_done:  # a finished greedy output is one of the hypotheses beam search considered
            g_score = _sequence_logp(model, forward, params, x, g) / ((5 + len(g) + 1) / 6) ** 0.6
            assert score >= g_score - 1e-4
    assert checked >= 2


def test_top_p_keeps_smallest_nucleus():
    probs = np.array([[0.5, 0.3, 0.15, 0.05]])
    logits = jnp.log(jnp.asarray(probs))
    kept = np.asarray(decode_search.filter_logits(logits, top_p=0.7)) > decode_search.NEG_INF / 2
    np.testing.assert_array_equal(kept, [[True, True, False, False]])
    kept = np.asarray(decode_search.filter_logits(logits, top_k=3)) > decode_search.NEG_INF / 2
    np.testing.assert_array_equal(kept, [[True, True, True, False]])
    kept = np.asarray(decode_search.filter_logits(logits, top_p=0.4)) > decode_search.NEG_INF / 2
    np.testing.assert_array_equal(kept, [[True, False, False, False]])


def test_length_penalty_matches_gnmt_formula():
    np.testing.assert_allclose(decode_search.length_penalty(7, 0.6), (12 / 6) ** 0.6, rtol=1e-6)
    np.testing.assert_allclose(decode_search.length_penalty(7, 0.0), 1.0)


@pytest.mark.parametrize("text, answer", [
    ("There are 3 apples and 4 pears, 3 + 4 = 7. So the answer is 7.", "7"),
    ("So the answer is no. Wait, recheck. So the answer is yes.", "yes"),
    ("So the answer is: (B) a river", "(B) a river"),
    ("The capital is Paris.", "The capital is Paris"),
    ("So the answer is", ""),
])
def test_cot_answer_after_last_marker(text, answer):
    assert decoding.parse_cot_answer(text) == answer


def test_trim_at_eos():
    assert decoding.trim_at_eos(np.array([12, 40, 1, 7, 0])) == [12, 40]
    assert decoding.trim_at_eos(np.array([3, 3])) == [3, 3]


def test_bad_decode_config_is_an_error():
    with pytest.raises(FlanJaxError, match="method"):
        decoding.DecodeConfig("nucleus")
    with pytest.raises(FlanJaxError, match="top_p"):
        decoding.DecodeConfig("sample", top_p=0.0)


@pytest.mark.slow
def test_greedy_on_a_mesh_equals_unsharded():
    from flan_jax.train.mesh import make_mesh

    model = _model("decoder")
    params = _params(model)
    cfg = decoding.DecodeConfig("greedy", max_decode_length=MAX_LEN)
    plain = decoding.generate(model, params, INPUTS, input_length=5, batch_size=8, config=cfg)
    sharded = decoding.generate(model, params, INPUTS, input_length=5, batch_size=8, config=cfg,
                                mesh=make_mesh((-1, 1, 1)))
    assert sharded.tokens == plain.tokens
    with pytest.raises(FlanJaxError, match="not divisible by the 8 batch shards"):
        decoding.generate(model, params, INPUTS, input_length=5, batch_size=4, config=cfg,
                          mesh=make_mesh((-1, 1, 1)))
