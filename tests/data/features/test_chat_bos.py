"""Every chat template x model family: the template's special strings are single vocabulary
ids or the template is refused (one line naming template and string), and a row starts with
exactly one BOS, the model's (issue 25, item 1).

Families: T5 (enc_dec, decoder start 0) and the Llama-style decoder (BOS 0) with the flan-mini
sentencepiece vocabulary; Gemma 3 (decoder, BOS 2) with the Gemma-3-style vocabulary rebuilt
from a GGUF fixture (tests/models/gguf_fixtures.py: `<start_of_turn>` / `<end_of_turn>` are
control pieces there, as in the real Gemma 3 file). Expected outcomes are written by hand from
what each vocabulary holds.
"""
import re

import numpy as np
import pytest

from flan_jax.data.features import chat, converters, gguf_vocab, pipeline
from flan_jax.data.features.vocab import default_vocabulary
from flan_jax.errors import FlanJaxError
from flan_jax.models.decoder import DecoderConfig
from flan_jax.models.gemma import Gemma3Config
from flan_jax.models.t5 import T5Config
from tests.models.gguf_fixtures import write_gemma3

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Name a prime."},
    {"role": "assistant", "content": "Seven."},
]
LENGTHS = {"inputs": 64, "targets": 32}
# family -> (model config, batch format, vocabulary name)
FAMILIES = {
    "t5": (T5Config(), "enc_dec", "flan_mini"),
    "decoder": (DecoderConfig(), "decoder", "flan_mini"),
    "gemma": (Gemma3Config(), "decoder", "gemma3_gguf"),
}
# (template, vocabulary) -> None if it renders, else the special string it is refused for
REFUSED = {
    ("flan", "flan_mini"): None, ("flan", "gemma3_gguf"): None,
    ("chatml", "flan_mini"): "<|im_start|>", ("chatml", "gemma3_gguf"): "<|im_start|>",
    ("llama3", "flan_mini"): "<|start_header_id|>", ("llama3", "gemma3_gguf"): "<|start_header_id|>",
    ("gemma", "flan_mini"): "<start_of_turn>", ("gemma", "gemma3_gguf"): None,
}


@pytest.fixture(scope="module")
def vocabularies(tmp_path_factory):
    path = write_gemma3(tmp_path_factory.mktemp("gguf") / "tiny.gguf")
    return {"flan_mini": default_vocabulary(),
            "gemma3_gguf": gguf_vocab.gguf_vocabulary(path, cache=tmp_path_factory.mktemp("cache"))}


def _first_row(example, fmt, bos):
    batch = next(iter(pipeline.batches([example], fmt, LENGTHS, 1, pack=False, bos_id=bos)))
    return batch


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("template", sorted(chat.TEMPLATES))
def test_specials_are_single_ids_or_refused_and_one_bos(vocabularies, template, family):
    config, fmt, vocab_name = FAMILIES[family]
    vocab = vocabularies[vocab_name]
    refused = REFUSED[(template, vocab_name)]
    if refused is not None:
        with pytest.raises(FlanJaxError) as info:
            chat.render_chat(CONVERSATION, template, vocab)
        message = str(info.value)
        assert "\n" not in message
        assert re.match(rf"chat template '{template}': '{re.escape(refused)}' is not one token", message)
        return
    tokens = chat.render_chat(CONVERSATION, template, vocab)
    sp = vocab.tokenizer
    # every special string of the template is one id, equal to the vocabulary's piece
    for special in chat.get_template(template).specials:
        assert tokens.ids.tolist().count(sp.piece_to_id(special)) >= 2, special
    # no BOS of any spelling inside the rendered tokens: not the id, not its text
    pieces = "".join(sp.id_to_piece(int(i)) for i in tokens.ids)
    assert "<bos>" not in pieces and "begin_of_text" not in pieces
    if sp.bos_id() >= 0:
        assert sp.bos_id() not in tokens.ids.tolist()
    bos = converters.model_bos_id(config)
    row = _first_row(chat.chat_example(tokens), fmt, bos)
    dec_in = row["decoder_input_tokens"][0]
    if fmt == "enc_dec":
        assert dec_in[0] == 0  # T5's decoder start; the encoder holds the prompt with no BOS
        np.testing.assert_array_equal(row["encoder_input_tokens"][0][:tokens.ids.size][:5], tokens.ids[:5])
    else:
        # exactly one BOS: the model's, then the first rendered token
        assert dec_in[0] == bos and dec_in[1] == tokens.ids[0] != bos


def test_gemma_row_starts_bos_then_start_of_turn(vocabularies):
    vocab = vocabularies["gemma3_gguf"]
    sp = vocab.tokenizer
    tokens = chat.render_chat(CONVERSATION, "gemma", vocab)
    row = _first_row(chat.chat_example(tokens), "decoder", 2)
    # hand-assembled: <bos>, <start_of_turn>, "user\n" as text, the merged system + user text
    start = [2, sp.piece_to_id("<start_of_turn>")] + list(vocab.encode("user\n"))
    assert row["decoder_input_tokens"][0][:len(start)].tolist() == start


def test_markup_as_text_is_an_explicit_choice_and_still_one_bos(vocabularies):
    vocab = vocabularies["flan_mini"]
    tokens = chat.render_chat(CONVERSATION, "gemma", vocab, markup="text")
    assert vocab.decode(tokens.ids.tolist()).startswith("<start_of_turn>")  # no "<bos>" text
    row = _first_row(chat.chat_example(tokens), "decoder", 2)
    assert row["decoder_input_tokens"][0][0] == 2 and row["decoder_input_tokens"][0][1] != 2


def test_given_special_ids_override_and_are_checked(vocabularies):
    vocab = vocabularies["flan_mini"]
    ids = {"<|im_start|>": 1000, "<|im_end|>": 1001}
    tokens = chat.render_chat(CONVERSATION, "chatml", vocab, special_ids=ids)
    assert tokens.ids[0] == 1000 and tokens.ids.tolist().count(1001) == 3
    with pytest.raises(FlanJaxError, match=r"chat template 'chatml': special_ids\['<\|im_end\|>'\] = 0"):
        chat.render_chat(CONVERSATION, "chatml", vocab, special_ids={"<|im_end|>": 0})


@pytest.mark.parametrize("fmt", ["decoder", "prefix_lm"])
def test_converter_refuses_an_example_that_brings_its_own_bos(fmt):
    example = {"inputs": [2, 7, 8], "targets": [9, 1]}
    with pytest.raises(FlanJaxError, match=r"example 0: starts with the BOS id 2"):
        converters.convert_examples([example], fmt, LENGTHS, bos_id=2)
    with pytest.raises(FlanJaxError, match=r"example 0: starts with the BOS id 2"):
        next(iter(pipeline.batches([example], fmt, LENGTHS, 1, pack=True, bos_id=2)))
    # BOS 0 (T5 / our decoder) and enc_dec never refuse: 0 is padding, not a token
    converters.convert_examples([example], fmt, LENGTHS, bos_id=0)
    converters.convert_examples([example], "enc_dec", LENGTHS, bos_id=2)


def test_chat_task_registration_refuses_before_reading(tmp_path, vocabularies):
    from flan_jax.data.tasks import chat_tasks

    with pytest.raises(FlanJaxError, match=r"chat template 'llama3': '<\|start_header_id\|>'"):
        chat_tasks.register_chat_task("no_llama_tokens", str(tmp_path / "missing.jsonl"),
                                      template="llama3", vocabulary=vocabularies["flan_mini"])


def test_decoding_prompt_with_its_own_bos_is_refused():
    from flan_jax.eval import decoding

    class _Gemma:
        FEATURE_FORMAT = "decoder"
        config = Gemma3Config()

    with pytest.raises(FlanJaxError, match=r"prompt 0: starts with the BOS id 2"):
        decoding.prompt_batch(_Gemma(), [[2, 7, 8]], 8, 1)
    arrays, _ = decoding.prompt_batch(_Gemma(), [[7, 8]], 8, 1)
    assert arrays["tokens"][0][:3].tolist() == [2, 7, 8]
