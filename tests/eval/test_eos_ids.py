"""A vocabulary whose EOS is not 1 (Llama-style sentencepiece: unk 0, bos 1, eos 2): rank
classification, `score` and decoding use its EOS id, as training does (seqio appends
`vocabulary.eos_id`); a vocabulary without a usable EOS is refused by name."""
import dataclasses
import io

import numpy as np
import pytest
import sentencepiece as spm

from flan_jax.data.features import vocab as vocab_lib
from flan_jax.eval import decoding, rank_classification
from flan_jax.commands import score as score_cmd

TEXT = ["the cat sat on the mat", "yes no maybe", "a dog ran far away", "one two three four five"] * 20


@pytest.fixture(scope="module")
def llama_style(tmp_path_factory):
    """A sentencepiece model with Llama's special ids: unk 0, bos 1, eos 2, no pad."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(TEXT), model_writer=model, vocab_size=40,
                                   model_type="bpe", unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
                                   character_coverage=1.0, num_threads=1)
    path = tmp_path_factory.mktemp("spm") / "llama_style.model"
    path.write_bytes(model.getvalue())
    sp = spm.SentencePieceProcessor(model_file=str(path))
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2)
    return vocab_lib.load_vocabulary(path)


def test_training_appends_the_vocabularys_eos(llama_style):
    import seqio

    assert vocab_lib.eos_id(llama_style) == 2 == llama_style.eos_id
    # what the task's own seqio preprocessing appends to targets (tasks.output_features)
    ds = seqio.preprocessors.append_eos_after_trim(
        __import__("tensorflow").data.Dataset.from_tensors({"targets": [7, 8]}),
        output_features={"targets": seqio.Feature(llama_style, add_eos=True)})
    assert list(next(ds.as_numpy_iterator())["targets"]) == [7, 8, 2]


def test_rank_classification_options_end_with_the_vocabularys_eos(llama_style):
    segments, _, _, _ = rank_classification.option_rows(
        [{"inputs": [5, 6], "options": ["yes", "no"]}], llama_style, "enc_dec", {"inputs": 8, "targets": 8})
    for seg, option in zip(segments, ["yes", "no"]):
        np.testing.assert_array_equal(seg.decoder, list(llama_style.encode(option)) + [2])


def test_score_appends_the_vocabularys_eos(llama_style):
    ids = score_cmd.target_token_ids(llama_style, ["yes", "the cat"])
    assert ids == [list(llama_style.encode("yes")) + [2], list(llama_style.encode("the cat")) + [2]]
    assert score_cmd.target_token_ids(llama_style, ["yes"], eos=False) == [list(llama_style.encode("yes"))]


def test_decoding_stops_at_the_configured_eos():
    """Reference: the same greedy search with an EOS that never occurs; with eos_id = a token it
    produced, the output is cut before that token's first occurrence and marked finished."""
    from test_decoding import INPUTS, _model, _params

    model = _model("decoder")
    params = _params(model)
    never = decoding.DecodeConfig("greedy", max_decode_length=6, eos_id=10**6)
    raw = decoding.generate(model, params, INPUTS, input_length=5, batch_size=4, config=never)
    row = next(r for r, t in enumerate(raw.tokens) if len(t) >= 3 and t[2] not in t[:2])
    eos = raw.tokens[row][2]
    cut = decoding.generate(model, params, INPUTS, input_length=5, batch_size=4,
                            config=dataclasses.replace(never, eos_id=eos))
    assert cut.tokens[row] == raw.tokens[row][:2] and cut.finished[row]


def test_vocabulary_without_eos_is_refused(tmp_path):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(TEXT), model_writer=model, vocab_size=40,
                                   model_type="bpe", unk_id=0, bos_id=1, eos_id=-1, pad_id=-1, num_threads=1)
    (tmp_path / "no_eos.model").write_bytes(model.getvalue())
    vocab = vocab_lib.load_vocabulary(tmp_path / "no_eos.model")
    with pytest.raises(vocab_lib.VocabularyError, match="no_eos.model.*eos id -1"):
        rank_classification.option_rows([{"inputs": [5], "options": ["yes"]}], vocab, "enc_dec",
                                        {"inputs": 4, "targets": 4})
