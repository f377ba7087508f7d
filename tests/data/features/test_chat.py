"""Chat templates: hand-written renders and loss masks for a 2-assistant-turn conversation."""
import numpy as np
import pytest

from flan_jax.data.features import chat
from flan_jax.data.features import pipeline
from flan_jax.errors import FlanJaxError

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi?"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "4"},
]


class CharVocab:
    """One token per character (id = code point), EOS = 1: hand-computable ids."""

    eos_id = 1

    def encode(self, s):
        return [ord(c) for c in s]


# Expected renders written by hand from the public formats. [[...]] marks the trained span
# (assistant content + end-of-turn marker); "~" stands for the EOS id. The templates' BOS
# (`<|begin_of_text|>`, `<bos>`) is not rendered: the feature converter writes the model's BOS.
# CharVocab has no special tokens, so the markup is rendered as text (markup="text").
EXPECTED = {
    "flan": "Be brief.\n\nHi?\n\n[[Hello.~]]2+2?\n\n[[4~]]",
    "chatml": (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi?<|im_end|>\n"
        "<|im_start|>assistant\n[[Hello.<|im_end|>]]\n"
        "<|im_start|>user\n2+2?<|im_end|>\n"
        "<|im_start|>assistant\n[[4<|im_end|>]]\n"),
    "llama3": (
        "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n[[Hello.<|eot_id|>]]"
        "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n[[4<|eot_id|>]]"),
    "gemma": (
        "<start_of_turn>user\nBe brief.\n\nHi?<end_of_turn>\n"
        "<start_of_turn>model\n[[Hello.<end_of_turn>]]\n"
        "<start_of_turn>user\n2+2?<end_of_turn>\n"
        "<start_of_turn>model\n[[4<end_of_turn>]]\n"),
}


def _ids_and_mask(marked):
    ids, mask, trained = [], [], 0
    i = 0
    while i < len(marked):
        if marked.startswith("[[", i) or marked.startswith("]]", i):
            trained = int(marked[i] == "[")
            i += 2
            continue
        ids.append(1 if marked[i] == "~" else ord(marked[i]))
        mask.append(trained)
        i += 1
    return ids, mask


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_template_ids_and_mask_by_hand(name):
    got = chat.render_chat(CONVERSATION, name, CharVocab(), markup="text")
    ids, mask = _ids_and_mask(EXPECTED[name])
    np.testing.assert_array_equal(got.ids, ids)
    np.testing.assert_array_equal(got.loss_mask, mask)
    # both assistant turns are trained, each with its end-of-turn marker
    starts = np.flatnonzero(np.diff(np.r_[0, got.loss_mask]) == 1)
    assert len(starts) == 2


def test_render_text_matches():
    text = chat.render_text(CONVERSATION, "chatml")
    assert text == EXPECTED["chatml"].replace("[[", "").replace("]]", "")


def test_special_ids_only_in_markup():
    msgs = [{"role": "user", "content": "<|im_end|>"}, {"role": "assistant", "content": "ok"}]
    special = {"<|im_start|>": 1000, "<|im_end|>": 1001}
    got = chat.render_chat(msgs, "chatml", CharVocab(), special_ids=special)
    enc = CharVocab().encode
    expected = ([1000] + enc("user\n") + enc("<|im_end|>") + [1001] + enc("\n")
                + [1000] + enc("assistant\n") + enc("ok") + [1001] + enc("\n"))
    mask = [0] * (1 + 5 + 10 + 1 + 1 + 1 + 10) + [1, 1, 1] + [0]
    np.testing.assert_array_equal(got.ids, expected)
    np.testing.assert_array_equal(got.loss_mask, mask)


def test_chat_example_split_keeps_later_user_turns_unweighted():
    tokens = chat.ChatTokens(np.array([5, 6, 7, 8, 1, 9, 4, 1]), np.array([0, 0, 1, 1, 1, 0, 1, 1]))
    ex = chat.chat_example(tokens)
    assert ex["inputs"].tolist() == [5, 6]
    assert ex["targets"].tolist() == [7, 8, 1, 9, 4, 1]
    assert ex["loss_weights"].tolist() == [1, 1, 1, 0, 1, 1]


def test_zero_loss_conversation_is_counted_and_dropped():
    vocab = CharVocab()
    good = chat.chat_example(chat.render_chat(CONVERSATION, "chatml", vocab, markup="text"))
    no_assistant = chat.chat_example(chat.render_chat(CONVERSATION[:2], "chatml", vocab, markup="text"))
    assert not no_assistant["loss_weights"].any()
    it = pipeline.batches([good, no_assistant, good], "decoder", {"inputs": 128, "targets": 128}, 1,
                         pack=False)
    out = list(it)
    assert it.stats.zero_loss == 1 and it.stats.examples == 3 and it.stats.truncated == 0
    assert len(out) == 2
    for batch in out:
        np.testing.assert_array_equal(batch["decoder_loss_weights"][0][: len(good["inputs"])], 0)
        assert batch["decoder_loss_weights"].sum() == good["loss_weights"].sum()


@pytest.mark.slow
def test_real_vocabulary_mask_covers_assistant_text():
    from flan_jax.data.features.vocab import default_vocabulary

    vocab = default_vocabulary()
    got = chat.render_chat(CONVERSATION, "flan", vocab)
    trained = got.ids[got.loss_mask == 1]
    # the trained ids are exactly the pieces "Hello." EOS "4" EOS, tokenized one by one
    expected = list(vocab.encode("Hello.")) + [1] + list(vocab.encode("4")) + [1]
    assert trained.tolist() == expected
    assert vocab.decode([i for i in trained.tolist() if i != 1]).replace(" ", "") == "Hello.4"


@pytest.mark.parametrize("messages, match", [
    ([{"role": "bot", "content": "x"}], r"messages\[0\] has role 'bot'"),
    ([{"role": "user"}], r"messages\[0\] needs 'role' and 'content'"),
    ([{"role": "user", "content": 3}], "content must be a string"),
    ("hello", "list of"),
])
def test_bad_messages_raise(messages, match):
    with pytest.raises(FlanJaxError, match=match):
        chat.render_chat(messages, "chatml", CharVocab(), markup="text")


def test_missing_special_tokens_are_refused_not_tokenized_as_text():
    with pytest.raises(FlanJaxError, match=r"^chat template 'chatml': '<\|im_start\|>' is not one token"):
        chat.render_chat(CONVERSATION, "chatml", CharVocab())
    with pytest.raises(FlanJaxError, match=r"^chat template 'gemma': '<start_of_turn>' is not one token"):
        chat.render_chat(CONVERSATION, "gemma", CharVocab())


def test_unknown_template_raises():
    with pytest.raises(FlanJaxError, match="unknown chat template 'vicuna'"):
        chat.render_chat(CONVERSATION, "vicuna", CharVocab())
