"""Batch formats: hand-worked arrays and array-by-array equality with seqio's feature converters."""
import numpy as np
import pytest

from flan_jax.data.features import converters as F
from flan_jax.data.features import packing as P
from flan_jax.errors import FlanJaxError

EX = [{"inputs": [7, 8, 5], "targets": [3, 9, 1]}, {"inputs": [6], "targets": [4, 1]}]


def _eq(batch, expected):
    assert set(batch) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(batch[key], np.array(value, np.int32), err_msg=key)
        assert batch[key].dtype == np.int32, key


def test_enc_dec_unpacked_by_hand():
    batch = F.convert_examples(EX, "enc_dec", {"inputs": 4, "targets": 4})
    _eq(batch, {
        "encoder_input_tokens": [[7, 8, 5, 0], [6, 0, 0, 0]],
        "decoder_target_tokens": [[3, 9, 1, 0], [4, 1, 0, 0]],
        "decoder_input_tokens": [[0, 3, 9, 1], [0, 4, 1, 0]],
        "decoder_loss_weights": [[1, 1, 1, 0], [1, 1, 0, 0]],
    })


def test_decoder_unpacked_by_hand():
    batch = F.convert_examples(EX, "decoder", {"inputs": 4, "targets": 4})
    _eq(batch, {
        "decoder_target_tokens": [[7, 8, 5, 3, 9, 1, 0, 0], [6, 4, 1, 0, 0, 0, 0, 0]],
        "decoder_input_tokens": [[0, 7, 8, 5, 3, 9, 1, 0], [0, 6, 4, 1, 0, 0, 0, 0]],
        # loss exactly on the targets (response + EOS), never on inputs or padding
        "decoder_loss_weights": [[0, 0, 0, 1, 1, 1, 0, 0], [0, 1, 1, 0, 0, 0, 0, 0]],
    })


def test_prefix_lm_unpacked_by_hand():
    batch = F.convert_examples(EX, "prefix_lm", {"inputs": 4, "targets": 4})
    _eq(batch, {
        "decoder_target_tokens": [[7, 8, 5, 3, 9, 1, 0, 0], [6, 4, 1, 0, 0, 0, 0, 0]],
        "decoder_input_tokens": [[0, 7, 8, 5, 3, 9, 1, 0], [0, 6, 4, 1, 0, 0, 0, 0]],
        "decoder_loss_weights": [[0, 0, 0, 1, 1, 1, 0, 0], [0, 1, 1, 0, 0, 0, 0, 0]],
        # BOS + inputs are read bidirectionally: len(inputs) + 1 positions
        "decoder_causal_attention": [[1, 1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0]],
    })


def test_packed_rows_by_hand():
    lengths = {"inputs": 5, "targets": 5}
    rows = [[F.example_to_segment(ex, "prefix_lm", lengths)[0] for ex in EX]]
    _eq(F.assemble_rows(rows, "prefix_lm", lengths, packed=True), {
        "decoder_target_tokens": [[7, 8, 5, 3, 9, 1, 6, 4, 1, 0]],
        "decoder_input_tokens": [[0, 7, 8, 5, 3, 9, 0, 6, 4, 0]],
        "decoder_loss_weights": [[0, 0, 0, 1, 1, 1, 0, 1, 1, 0]],
        "decoder_segment_ids": [[1, 1, 1, 1, 1, 1, 2, 2, 2, 0]],
        "decoder_positions": [[0, 1, 2, 3, 4, 5, 0, 1, 2, 0]],
        "decoder_causal_attention": [[1, 1, 1, 1, 0, 0, 1, 1, 0, 0]],
    })
    rows = [[F.example_to_segment(ex, "enc_dec", lengths)[0] for ex in EX]]
    _eq(F.assemble_rows(rows, "enc_dec", lengths, packed=True), {
        "encoder_input_tokens": [[7, 8, 5, 6, 0]],
        "encoder_segment_ids": [[1, 1, 1, 2, 0]],
        "encoder_positions": [[0, 1, 2, 0, 0]],
        "decoder_target_tokens": [[3, 9, 1, 4, 1]],
        "decoder_input_tokens": [[0, 3, 9, 0, 4]],
        "decoder_loss_weights": [[1, 1, 1, 1, 1]],
        "decoder_segment_ids": [[1, 1, 1, 2, 2]],
        "decoder_positions": [[0, 1, 2, 0, 1]],
    })


def test_empty_segment_is_an_all_padding_row():
    empty = np.zeros(0, np.int32)
    seg = F.example_to_segment(EX[1], "enc_dec", {"inputs": 2, "targets": 3})[0]
    batch = F.assemble_rows([[seg], [F.Segment(empty, empty, empty, 0)]], "enc_dec",
                            {"inputs": 2, "targets": 3}, packed=False)
    _eq(batch, {"encoder_input_tokens": [[6, 0], [0, 0]], "decoder_target_tokens": [[4, 1, 0], [0, 0, 0]],
                "decoder_input_tokens": [[0, 4, 1], [0, 0, 0]], "decoder_loss_weights": [[1, 1, 0], [0, 0, 0]]})


def test_chat_loss_weights_carried():
    ex = {"inputs": [5, 6], "targets": [7, 1, 9, 4, 1], "loss_weights": [1, 1, 0, 1, 1]}
    batch = F.convert_examples([ex], "decoder", {"inputs": 2, "targets": 6})
    np.testing.assert_array_equal(batch["decoder_loss_weights"], [[0, 0, 1, 1, 0, 1, 1, 0]])


def test_field_names_are_the_contract():
    assert F.batch_fields("decoder", packed=True) == (
        "decoder_input_tokens", "decoder_target_tokens", "decoder_loss_weights",
        "decoder_segment_ids", "decoder_positions")
    assert set(F.batch_fields("enc_dec", True)) == {
        "encoder_input_tokens", "encoder_segment_ids", "encoder_positions", "decoder_input_tokens",
        "decoder_target_tokens", "decoder_loss_weights", "decoder_segment_ids", "decoder_positions"}
    assert set(F.batch_fields("prefix_lm", False)) == {
        "decoder_input_tokens", "decoder_target_tokens", "decoder_loss_weights", "decoder_causal_attention"}


def test_overlong_truncate_and_drop():
    ex = {"inputs": [7, 8, 5], "targets": [3, 9, 1]}
    lengths = {"inputs": 2, "targets": 8}
    seg, outcome = F.example_to_segment(ex, "decoder", lengths, "truncate")
    assert outcome == "truncated"
    np.testing.assert_array_equal(seg.decoder, [7, 8, 3, 9, 1])
    np.testing.assert_array_equal(seg.weights, [0, 0, 1, 1, 1])
    assert F.example_to_segment(ex, "decoder", lengths, "drop") == (None, "dropped")
    assert F.example_to_segment(ex, "enc_dec", {"inputs": 3, "targets": 3}, "drop")[1] == "ok"


@pytest.mark.parametrize("bad, match", [
    (lambda: F.convert_examples(EX, "seq2seq", {"inputs": 4, "targets": 4}), "unknown batch format"),
    (lambda: F.convert_examples(EX, "decoder", {"inputs": 0, "targets": 4}), "positive int"),
    (lambda: F.convert_examples(EX, "decoder", {"inputs": 4, "targets": -2}), "positive int"),
    (lambda: F.convert_examples(EX, "decoder", {"inputs": 4}), "need 'targets'"),
    (lambda: F.convert_examples(EX, "decoder", {"inputs": 4, "targets": 4, "x": 1}), "unknown sequence"),
    (lambda: F.convert_examples([{"inputs": [5]}], "decoder", {"inputs": 4, "targets": 4}), "no 'targets'"),
    (lambda: F.convert_examples([{"inputs": [5], "targets": []}], "enc_dec", {"inputs": 4, "targets": 4}),
     "example 0: empty 'targets'"),
    (lambda: F.convert_examples([{"inputs": [5, 0], "targets": [1]}], "decoder", {"inputs": 4, "targets": 4}),
     "0 is padding"),
    (lambda: F.convert_examples([{"targets": [4, 1], "loss_weights": [1]}], "decoder",
                                {"inputs": 4, "targets": 4}), "loss_weights"),
    (lambda: F.example_to_segment(EX[0], "decoder", {"inputs": 4, "targets": 4}, "wrap"), "overlong policy"),
    (lambda: F.example_to_segment(EX[0], "causal", {"inputs": 4, "targets": 4}), "unknown batch format"),
])
def test_bad_inputs_raise(bad, match):
    with pytest.raises(FlanJaxError, match=match):
        bad()


def _random_examples(seed, n, max_in, max_tg):
    rng = np.random.default_rng(seed)
    return [{"inputs": rng.integers(2, 90, rng.integers(1, max_in + 1)),
             "targets": np.r_[rng.integers(2, 90, rng.integers(0, max_tg)), 1]} for _ in range(n)]


@pytest.mark.slow
@pytest.mark.parametrize("format_name", F.FORMATS)
@pytest.mark.parametrize("pack", [False, True])
def test_equals_seqio_converters(format_name, pack):
    """Same arrays as seqio's converters (pack=True: our seqio-style greedy packer), with overlong
    examples in the mix (seqio tasks trim them; we truncate the same way)."""
    lengths = {"inputs": 9, "targets": 5}
    examples = _random_examples(format_name.__len__() + pack, 60, 12, 7)
    reference = F.seqio_convert(examples, format_name, lengths, pack=pack)
    if pack:
        cap = F.row_capacity(format_name, lengths)
        segs = [F.example_to_segment(ex, format_name, lengths)[0] for ex in examples]
        rows = P.pack_segments(segs, P.GreedyPacker(cap, P.seqio_flush_every(format_name, cap)))
        ours = F.assemble_rows(rows, format_name, lengths, packed=True)
        assert len(rows) < len(examples)  # something was actually packed
    else:
        ours = F.convert_examples(examples, format_name, lengths)
    assert set(ours) == set(reference)
    for key in reference:
        np.testing.assert_array_equal(ours[key], reference[key], err_msg=key)
