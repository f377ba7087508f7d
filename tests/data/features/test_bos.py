"""The BOS id of the decoder formats: a model property (config.bos_id, default 0) that every batch
builder writes at each segment start, changing nothing else."""
import dataclasses

import numpy as np
import pytest

from flan_jax.data.features import converters as features, pipeline
from flan_jax.eval import decoding, rank_classification
from flan_jax.commands import score as score_cmd

EXAMPLES = [
    {"inputs": [7, 8, 5], "targets": [3, 9, 1]},
    {"inputs": [4], "targets": [6, 1]},
    {"inputs": [11, 12], "targets": [13, 14, 15, 1]},
    {"inputs": [], "targets": [16, 1]},
    {"inputs": [17, 18, 19, 20], "targets": [21, 1], "loss_weights": [1, 1]},
]
LENGTHS = {"inputs": 4, "targets": 4}


@dataclasses.dataclass(frozen=True)
class _Config:
    bos_id: int = 2


class _Model:
    FEATURE_FORMAT = "decoder"
    config = _Config()


def test_hand_computed_unpacked_row():
    got = features.convert_examples(EXAMPLES[:1], "prefix_lm", LENGTHS, bos_id=2)
    np.testing.assert_array_equal(got["decoder_input_tokens"], [[2, 7, 8, 5, 3, 9, 1, 0]])
    np.testing.assert_array_equal(got["decoder_target_tokens"], [[7, 8, 5, 3, 9, 1, 0, 0]])
    np.testing.assert_array_equal(got["decoder_causal_attention"], [[1, 1, 1, 1, 0, 0, 0, 0]])


def test_hand_computed_packed_row():
    segs = [features.example_to_segment({"targets": t}, "decoder", LENGTHS)[0] for t in ([5, 1], [6, 7, 1])]
    got = features.assemble_rows([segs], "decoder", LENGTHS, packed=True, bos_id=2)
    np.testing.assert_array_equal(got["decoder_input_tokens"], [[2, 5, 2, 6, 7, 0, 0, 0]])


@pytest.mark.parametrize("fmt", ["decoder", "prefix_lm"])
@pytest.mark.parametrize("pack,packer", [(False, "best_fit"), (True, "best_fit"), (True, "greedy")])
def test_bos_at_every_segment_start_and_nothing_else_changes(fmt, pack, packer):
    kw = dict(pack=pack, packer=packer, drop_remainder=False)
    base = list(pipeline.batches(EXAMPLES, fmt, LENGTHS, 2, **kw))
    gemma = list(pipeline.batches(EXAMPLES, fmt, LENGTHS, 2, bos_id=2, **kw))
    assert len(base) == len(gemma) > 1
    starts_seen = 0
    for b0, b2 in zip(base, gemma):
        assert b0.keys() == b2.keys()
        for key in b0:
            if key != "decoder_input_tokens":
                np.testing.assert_array_equal(b0[key], b2[key], err_msg=key)
        targets = b0["decoder_target_tokens"]
        if pack:
            starts = (b0["decoder_positions"] == 0) & (b0["decoder_segment_ids"] > 0)
        else:  # one example per row, starting at column 0 (all-padding rows have no start)
            starts = np.zeros_like(targets, bool)
            starts[:, 0] = targets[:, 0] != 0
        starts_seen += int(starts.sum())
        assert np.all(b0["decoder_input_tokens"][starts] == 0)
        assert np.all(b2["decoder_input_tokens"][starts] == 2)
        np.testing.assert_array_equal(b0["decoder_input_tokens"][~starts], b2["decoder_input_tokens"][~starts])
    assert starts_seen == len(EXAMPLES)


def test_default_equals_seqio_and_enc_dec_ignores_bos():
    got = features.convert_examples(EXAMPLES, "decoder", LENGTHS)
    want = features.seqio_convert(EXAMPLES, "decoder", LENGTHS, pack=False)
    np.testing.assert_array_equal(got["decoder_input_tokens"], want["decoder_input_tokens"])
    enc = features.convert_examples(EXAMPLES, "enc_dec", LENGTHS, bos_id=2)
    assert np.all(enc["decoder_input_tokens"][:, 0] == 0)


def test_model_bos_id():
    from flan_jax.models.decoder import Decoder, DecoderConfig

    assert features.model_bos_id(Decoder(DecoderConfig())) == 0
    assert features.model_bos_id(_Model()) == 2
    assert features.model_bos_id(_Config(bos_id=5)) == 5
    assert features.model_bos_id(object()) == 0


def test_eval_batches_use_the_model_bos():
    segs, _, _, _ = rank_classification.option_rows(
        [{"inputs": [7, 8], "options": ["a"]}], _Vocab(), "decoder", LENGTHS)
    batch = next(rank_classification.fixed_batches(segs, "decoder", LENGTHS, 2, features.model_bos_id(_Model())))
    np.testing.assert_array_equal(batch["decoder_input_tokens"][0, :3], [2, 7, 8])
    assert np.all(batch["decoder_input_tokens"][1] == 0)  # the filler row stays empty
    prompt, _ = decoding.prompt_batch(_Model(), [[7, 8], [5]], input_length=3, batch_size=2)
    np.testing.assert_array_equal(prompt["tokens"], [[2, 7, 8, 0], [2, 5, 0, 0]])
    score = score_cmd.build_score_batch("prefix_lm", [7, 8], [[3, 1]], bos_id=2)
    np.testing.assert_array_equal(score["decoder_input_tokens"], [[2, 7, 8, 3]])


class _Vocab:
    def encode(self, text):
        return [30 + len(text)]
