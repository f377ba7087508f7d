"""Options scored from one prompt pass equal one row per (example, option)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.eval import prompt_sharing, rank_classification as rc
from flan_jax.models.decoder import Decoder, DecoderConfig
from flan_jax.models.gemma import Gemma3, Gemma3Config


class CharVocab:
    def encode(self, text):
        return [3 + ord(c) - 97 for c in text]


def test_call_arrays_lay_out_the_docstring_example():
    a = prompt_sharing.call_arrays([np.array([7, 8, 5])], [[(np.array([31, 1]), np.array([1, 1])),
                                                           (np.array([40, 41, 1]), np.array([1, 1, 1]))]],
                                   bos_id=2, rows=3)
    assert a["prompt_tokens"].shape == (1, 32)
    np.testing.assert_array_equal(a["prompt_tokens"][0, :4], [2, 7, 8, 0])
    np.testing.assert_array_equal(a["prompt_segments"][0, :4], [1, 1, 1, 0])
    np.testing.assert_array_equal(a["owner"], [0, 0, 0])
    np.testing.assert_array_equal(a["option_tokens"], [[5, 31, 0, 0], [5, 40, 41, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(a["option_targets"], [[31, 1, 0, 0], [40, 41, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(a["option_weights"], [[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(a["option_positions"][:2], [[3, 4, 5, 6], [3, 4, 5, 6]])


def test_split_segment_separates_prompt_and_option():
    from flan_jax.data.features import converters as features

    seg = features.Segment(np.zeros(0, np.int32), np.array([7, 8, 5, 31, 1]), np.array([0, 0, 0, 1, 1]), 0)
    prompt, option, weights = prompt_sharing.split_segment(seg)
    np.testing.assert_array_equal(prompt, [7, 8, 5])
    np.testing.assert_array_equal(option, [31, 1])
    np.testing.assert_array_equal(weights, [1, 1])


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


@pytest.mark.parametrize("kind", ["gemma", "decoder"])
def test_shared_prompt_scores_equal_one_row_per_option(kind):
    model = _models()[kind]
    params = _params(model)
    rng = np.random.default_rng(0)
    examples = [{"inputs": rng.integers(3, 30, size=n).tolist(), "options": opts} for n, opts in [
        (5, ["yes", "no"]), (0, ["ab", "b"]), (37, ["abc", "b", "cc"]),  # empty; over one prompt bucket
        (9, ["a", "bb", "ccc", "dddd"]), (3, ["x", "y"]), (12, ["abc", "b", "cc"])]]
    lengths = {"inputs": 40, "targets": 6}
    segments, owner, _, _ = rc.option_rows(examples, CharVocab(), "decoder", lengths)
    bos = 2 if kind == "gemma" else 0
    want, want_n = rc.run_batches(model, params, rc.fixed_batches(segments, "decoder", lengths, 4, bos))
    for batch_size in (3, 8):  # fewer rows per call than some examples' options; several examples per call
        got, got_n = prompt_sharing.score_segments(model, params, segments, owner, bos, batch_size)
        np.testing.assert_allclose(got, want[:len(segments)], rtol=2e-5, atol=2e-5)
        np.testing.assert_array_equal(got_n, want_n[:len(segments)])


def test_rank_classify_uses_the_shared_prompt_path_for_decoders(monkeypatch):
    model = _models()["decoder"]
    calls = []
    real = prompt_sharing.score_segments
    monkeypatch.setattr(prompt_sharing, "score_segments", lambda *a, **k: calls.append(1) or real(*a, **k))
    rc.rank_classify(model, _params(model), [{"inputs": [4, 5], "options": ["a", "b"]}], vocabulary=CharVocab(),
                     lengths={"inputs": 8, "targets": 4}, method="shared")
    assert calls == [1]
    prefix_lm = DecoderConfig(vocab_size=8, emb_dim=8, num_heads=1, num_kv_heads=1, head_dim=8, mlp_dim=8,
                              num_layers=1, prefix_lm=True)
    assert not prompt_sharing.supports(Decoder(prefix_lm))  # its prompt attends both ways: rows as before
