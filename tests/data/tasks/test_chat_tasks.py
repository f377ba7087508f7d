"""Chat files as seqio tasks: template rendering with assistant-only loss weights end to end."""
import json

import numpy as np
import pytest
import seqio

from flan_jax.data.features import chat, pipeline
from flan_jax.data.tasks import chat_tasks
from flan_jax.data.features.vocab import default_vocabulary
from flan_jax.errors import FlanJaxError

CONVERSATION = {"messages": [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Name a prime."},
    {"role": "assistant", "content": "Seven."},
    {"role": "user", "content": "Another?"},
    {"role": "assistant", "content": "Eleven."},
]}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("template", ["chatml", "llama3", "gemma", "flan"])
def test_task_examples_carry_assistant_only_weights(tmp_path, template):
    path = write_jsonl(tmp_path / f"conv_{template}.jsonl", [CONVERSATION])
    vocab = default_vocabulary()
    # the flan-mini vocabulary has none of the templates' special tokens: markup as text
    name = chat_tasks.register_chat_task(f"t_{template}", str(path), template=template, vocabulary=vocab,
                                         markup="text")
    assert name == f"chat.t_{template}:{template}"
    ex = next(seqio.get_mixture_or_task(name).get_dataset(
        None, split="train", shuffle=False, use_cached=False).as_numpy_iterator())
    # independent reference: render the whole conversation and split at the first trained token
    ref = chat.render_chat(CONVERSATION["messages"], template, vocab, markup="text")
    first = int(np.flatnonzero(ref.loss_mask)[0])
    np.testing.assert_array_equal(ex["inputs"], ref.ids[:first])
    np.testing.assert_array_equal(ex["targets"], ref.ids[first:])
    np.testing.assert_array_equal(ex["loss_weights"], ref.loss_mask[first:])
    # the trained text is exactly the two assistant answers plus their end markers
    trained = vocab.decode([int(t) for t, w in zip(ex["targets"], ex["loss_weights"])
                            if w and t != vocab.eos_id])
    assert "Seven." in trained and "Eleven." in trained
    assert "Another?" not in trained and "prime" not in trained


def test_pipeline_turns_weights_into_decoder_loss_weights(tmp_path):
    path = write_jsonl(tmp_path / "conv.jsonl", [CONVERSATION])
    vocab = default_vocabulary()
    name = chat_tasks.register_chat_task("pipe", str(path), template="chatml", vocabulary=vocab,
                                         markup="text")
    batch = next(iter(pipeline.batches(name, "decoder", {"inputs": 128, "targets": 128}, 1,
                                       pack=False, shuffle=False)))
    ref = chat.render_chat(CONVERSATION["messages"], "chatml", vocab, markup="text")
    n = ref.ids.size
    np.testing.assert_array_equal(batch["decoder_target_tokens"][0, :n], ref.ids)
    np.testing.assert_array_equal(batch["decoder_loss_weights"][0, :n], ref.loss_mask)
    assert batch["decoder_loss_weights"][0, n:].sum() == 0


def test_unknown_template_fails_before_reading(tmp_path):
    with pytest.raises(FlanJaxError, match="chatmlx"):
        chat_tasks.register_chat_task("bad", str(tmp_path / "missing.jsonl"), template="chatmlx")


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(CONVERSATION) + "\n{not json\n")
    name = chat_tasks.register_chat_task("broken", str(path), template="flan",
                                         vocabulary=default_vocabulary())
    with pytest.raises(FlanJaxError, match=r"broken.jsonl:2"):
        list(seqio.get_mixture_or_task(name).get_dataset(
            None, split="train", shuffle=False, use_cached=False).as_numpy_iterator())
