"""Packed tree rows score options exactly as one row per (example, option) does."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.errors import FlanJaxError
from flan_jax.eval import packed_scoring as ps, rank_classification as rc
from flan_jax.models.decoder import Decoder, DecoderConfig
from flan_jax.models.gemma import Gemma3, Gemma3Config


class CharVocab:
    def encode(self, text):
        return [3 + ord(c) - 97 for c in text]


def _models():
    gemma = Gemma3(Gemma3Config(vocab_size=40, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8, mlp_dim=24,
                                num_layers=3, query_pre_attn_scalar=8.0, sliding_window=4,
                                sliding_window_pattern=2, rope_theta=1000.0, rope_local_base_freq=50.0,
                                bos_token_id=2))
    decoder = Decoder(DecoderConfig(vocab_size=40, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8,
                                    mlp_dim=32, num_layers=2))
    return {"gemma": gemma, "decoder": decoder}


def _params(model, seed=0):
    params = nn.meta.unbox(model.init(jax.random.PRNGKey(seed),
                                      {"decoder_input_tokens": jnp.ones((1, 8), jnp.int32)})["params"])
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
    return jax.tree_util.tree_unflatten(tree, [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def test_first_fit_decreasing_unit_and_row_width_follow_their_docstrings():
    assert ps.pack_first_fit([5, 3, 4, 2], 8) == [[0, 1], [2, 3]]
    assert [ps.next_pow2(n) for n in (0, 1, 5, 8)] == [1, 1, 8, 8]  # prompt_sharing's, used for call rows
    tokens, positions, branches, scored = ps.unit(
        [(np.array([7, 8, 5]), np.array([31, 1]), np.array([1, 1])),
         (np.array([7, 8, 5]), np.array([40, 41, 1]), np.array([1, 1, 1]))], bos_id=2)
    np.testing.assert_array_equal(tokens, [2, 7, 8, 5, 31, 40, 41])
    np.testing.assert_array_equal(positions, [0, 1, 2, 3, 4, 4, 5])
    np.testing.assert_array_equal(branches, [0, 0, 0, 0, 1, 2, 2])
    assert [(j, o.tolist(), t.tolist()) for j, o, t, _ in scored] == [(0, [3, 4], [31, 1]), (1, [3, 5, 6], [40, 41, 1])]
    # costs: rows x W x (1 + W / 570), plus 1,024 per width
    assert (ps.ATTENTION_WIDTH, ps.COMPILE_COST) == (570, 1024)
    # 2 rows of 160: 410; 3 rows of 128: 470; 8 rows of 64: 570; 2 rows of 256 (8 x 33 > 256): 742
    assert ps.row_layout([33] * 8) == [(160, [[0, 1, 2, 3], [4, 5, 6, 7]])]
    # the long unit apart: 20 rows of 224 (6,240) + 1 of 1,024 (2,864) + 2 widths = 11,152 < 5 rows of 1,024: 15,342
    assert ps.row_layout([100] * 40 + [900]) == [(224, [[2 * i, 2 * i + 1] for i in range(20)]), (1024, [[40]])]
    with pytest.raises(FlanJaxError, match="widest packed row"):
        ps.row_layout([ps.WIDTHS[-1] + 1])


def test_call_lays_out_the_module_docstring_example():
    parts = [[(np.array([7, 8, 5]), np.array([31, 1]), np.array([1, 1])),
              (np.array([7, 8, 5]), np.array([40, 41, 1]), np.array([1, 1, 1]))],
             [(np.array([6, 9]), np.array([33, 1]), np.array([1, 1]))]]
    (call,) = ps.build_calls(parts, [[0, 1], [2]], bos_id=2)
    a = call.arrays
    assert a["tokens"].shape == (1, 64)  # one row used: the smallest power of two holding it
    np.testing.assert_array_equal(a["tokens"][0, :12], [2, 7, 8, 5, 31, 40, 41, 2, 6, 9, 33, 0])
    np.testing.assert_array_equal(a["segments"][0, :12], [1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 0])
    np.testing.assert_array_equal(a["positions"][0, :12], [0, 1, 2, 3, 4, 4, 5, 0, 1, 2, 3, 0])
    np.testing.assert_array_equal(a["branches"][0, :12], [0, 0, 0, 0, 1, 2, 2, 0, 0, 0, 1, 0])
    assert call.score_segment.size == 7
    np.testing.assert_array_equal(a["score_index"][:7], [3, 4, 3, 5, 6, 9, 10])
    np.testing.assert_array_equal(a["score_targets"][:7], [31, 1, 40, 41, 1, 33, 1])
    np.testing.assert_array_equal(a["score_slot"][:7], [0, 1, 0, 2, 3, 4, 5])
    assert call.num_head == 6
    np.testing.assert_array_equal(a["head_index"][:6], [3, 4, 5, 6, 9, 10])
    np.testing.assert_array_equal(call.score_segment, [0, 0, 1, 1, 1, 2, 2])


def test_a_call_with_more_scored_tokens_than_positions_widens_only_its_score_arrays():
    """An empty prompt with 70 one-token options: 70 scored tokens on 1 position."""
    parts = [[(np.array([], np.int32), np.array([5 + j % 30]), np.array([1])) for j in range(70)]]
    (call,) = ps.build_calls(parts, [list(range(70))], bos_id=2, tokens_per_call=64)
    assert call.arrays["tokens"].shape == (1, 64) and call.arrays["score_index"].shape == (128,)
    assert call.score_segment.size == 70 and not call.arrays["score_index"][:70].any()
    assert call.num_head == 1 and call.arrays["head_index"].shape == (64,)


def test_branch_ids_are_refused_in_decode_mode():
    model = _models()["decoder"]
    params = _params(model)
    tokens = jnp.ones((1, 4), jnp.int32)
    with pytest.raises(ValueError, match="decoder_branch_ids"):
        model.apply({"params": params}, {"decoder_input_tokens": tokens, "decoder_branch_ids": tokens},
                    decode=True, mutable=["cache"])


EXAMPLES = [(5, ["yes", "no"]), (0, ["ab", "b"]), (37, ["abc", "b", "cc"]),  # an empty prompt; a long one
            (9, ["a", "bb", "ccc", "dddd"]), (3, ["x", "y"]), (12, ["abc", "b", "cc"]), (21, ["q", "rs"])]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gemma", "decoder"])
def test_packed_scores_equal_one_row_per_option_batched_or_one_by_one(kind):
    """Reference: one unpacked row per (example, option) (`rank_classification.fixed_batches`)."""
    model = _models()[kind]
    params = _params(model)
    rng = np.random.default_rng(0)
    examples = [{"inputs": rng.integers(3, 30, size=n).tolist(), "options": opts} for n, opts in EXAMPLES]
    lengths = {"inputs": 40, "targets": 6}
    bos = 2 if kind == "gemma" else 0
    segments, owner, _, _ = rc.option_rows(examples, CharVocab(), "decoder", lengths, bos_id=bos)
    want, want_n = rc.run_batches(model, params, rc.fixed_batches(segments, "decoder", lengths, 4, bos))
    want, want_n = want[:len(segments)], want_n[:len(segments)]
    for tokens_per_call in (64, 4096):  # several calls (the last one smaller) / everything in one call
        got, got_n = ps.score_segments(model, params, segments, owner, bos, tokens_per_call)
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
        np.testing.assert_array_equal(got_n, want_n)
    for i in range(len(examples)):  # one example at a time: other prompts in a row change nothing
        mine = np.nonzero(owner == i)[0]
        got, _ = ps.score_segments(model, params, [segments[j] for j in mine], np.zeros(mine.size, np.int64), bos)
        np.testing.assert_allclose(got, want[mine], rtol=2e-5, atol=2e-5)


@pytest.mark.slow
def test_rank_classify_methods_agree_and_bad_method_is_one_error():
    model = _models()["gemma"]
    params = _params(model)
    rng = np.random.default_rng(1)
    examples = [{"inputs": rng.integers(3, 30, size=n).tolist(), "options": opts} for n, opts in EXAMPLES]
    kw = dict(vocabulary=CharVocab(), lengths={"inputs": 40, "targets": 6}, batch_size=4)
    results = {m: rc.rank_classify(model, params, examples, method=m, **kw) for m in rc.METHODS}
    for m in ("shared", "rows"):
        for a, b in zip(results["packed"].log_likelihoods, results[m].log_likelihoods):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)
    with pytest.raises(FlanJaxError, match="scoring method 'fast'"):
        rc.rank_classify(model, params, examples, method="fast", **kw)
    # Options equal once cut to the 6 target tokens (as PIQA's long solutions): an exact tie under
    # every method, so each picks the first; example 2's "abcdefgh" is another example's, scored apart.
    twins = [{"inputs": [5, 6, 7], "options": ["abcdefgh", "abcdefgz", "b"]},
             {"inputs": [8, 9], "options": ["b", "abcdefgh"]}]
    for m in rc.METHODS:
        got = rc.rank_classify(model, params, twins, method=m, **kw)
        first = got.log_likelihoods[0]
        assert first[0] == first[1] and first[2] != first[0] and got.predictions[0] in (0, 2), m
        assert got.truncated_rows == 3, m


def test_distinct_segments_follows_its_docstring_example():
    def seg(*ids):
        return rc.features.Segment(np.zeros(0, np.int32), np.asarray(ids, np.int32), np.ones(len(ids), np.float32), 0)

    a, b = seg(4, 5, 1), seg(4, 6, 1)
    first, inverse = rc.distinct_segments([a, b, seg(4, 5, 1), a], np.asarray([0, 0, 0, 1]))
    np.testing.assert_array_equal(first, [0, 1, 3])
    np.testing.assert_array_equal(inverse, [0, 1, 0, 2])
    weighted = seg(4, 5, 1)._replace(weights=np.asarray([0, 1, 1], np.float32))  # same tokens, other weights
    assert rc.distinct_segments([a, weighted], np.asarray([0, 0]))[0].tolist() == [0, 1]


@pytest.mark.slow
def test_score_options_passes_its_method_through(monkeypatch):
    model = _models()["gemma"]
    params = _params(model)
    rng = np.random.default_rng(1)
    examples = [{"inputs": rng.integers(3, 30, size=n).tolist(), "options": opts} for n, opts in EXAMPLES]
    kw = dict(vocabulary=CharVocab(), lengths={"inputs": 40, "targets": 6}, batch_size=4, mutual_info=True)
    used, score_segments = [], rc.score_segments
    monkeypatch.setattr(rc, "score_segments", lambda *a: used.append(a[-1]) or score_segments(*a))
    scored = {m: rc.score_options(model, params, examples, method=m, **kw) for m in ("packed", "rows")}
    assert used == ["packed", "rows"]
    for field in ("log_likelihoods", "unconditional"):
        for a, b in zip(getattr(scored["packed"], field), getattr(scored["rows"], field)):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)
    with pytest.raises(FlanJaxError, match="scoring method 'fast'"):
        rc.score_options(model, params, examples, method="fast", **kw)


@pytest.mark.slow
def test_compilations_are_bounded_by_the_call_shapes_not_the_lengths():
    """30 prompts of 30 different lengths compile one program per distinct call shape (a full
    call and a smaller last one) and the head's logsumexp, and a second evaluation with new lengths in the same width
    bucket compiles nothing new."""
    from flan_jax.eval import compilations

    model = _models()["decoder"]
    params = _params(model)
    rng = np.random.default_rng(2)

    def run(lengths):
        examples = [{"inputs": rng.integers(3, 30, size=n).tolist(), "options": ["ab", "c"]} for n in lengths]
        segments, owner, _, _ = rc.option_rows(examples, CharVocab(), "decoder", {"inputs": 64, "targets": 4})
        by = [[2 * i, 2 * i + 1] for i in range(len(examples))]
        parts = [[ps.split_segment(segments[j]) for j in js] for js in by]
        shapes = {tuple(v.shape for v in c.arrays.values()) for c in ps.build_calls(parts, by, 0, 512)}
        with compilations.counted() as compiles:
            ps.score_segments(model, params, segments, owner, 0, 512)
        return len(compiles), shapes

    first, shapes = run(range(20, 50))
    assert len(shapes) <= 2 and first <= len(shapes) + 2  # + the head's logsumexp at its two chunk sizes
    again, shapes_again = run(range(51, 21, -1))
    assert shapes_again <= shapes and again == 0
