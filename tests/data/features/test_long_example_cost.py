"""A pathological example (one chat line of 10,000 turns, ~600 KB) costs what the rows keep, and is
counted (issue 25, item 7). Timing-free: the work is measured as characters handed to the
tokenizer (a counting wrapper around the real flan-mini vocabulary), compared with a small
example's, and the cut example is checked against the full render cut by the pipeline."""
import json

import numpy as np
import pytest

from flan_jax.data.features import chat, pipeline
from flan_jax.data.features.vocab import default_vocabulary
from flan_jax.data.sources import datasources, json_rows, local_files
from flan_jax.data.tasks import registry
from flan_jax.data.templates import fewshot, variants

LENGTHS = {"inputs": 64, "targets": 32}


class CountingVocab:
    """The real vocabulary; counts the characters it is asked to encode."""

    def __init__(self, vocab):
        self.vocab, self.tokenizer, self.eos_id = vocab, vocab.tokenizer, vocab.eos_id
        self.chars = 0

    def encode(self, text):
        self.chars += len(text)
        return self.vocab.encode(text)


def _conversation(turns):
    return [{"role": "user" if i % 2 == 0 else "assistant",
             "content": f"Turn {i} says hello to the other side, with a few more words."}
            for i in range(turns)]


@pytest.fixture(scope="module")
def vocab():
    return default_vocabulary()


def test_chat_render_work_is_bounded_by_the_lengths(vocab):
    small, huge = CountingVocab(vocab), CountingVocab(vocab)
    big = _conversation(10_000)
    assert len(json.dumps({"messages": big})) > 600_000
    cut = chat.render_chat(big, "flan", huge, lengths=LENGTHS)
    chat.render_chat(_conversation(20), "flan", small, lengths=LENGTHS)
    # the 10,000-turn line costs about what a 20-turn one does, not 500 times more
    assert huge.chars <= 3 * small.chars
    # and the pipeline cuts it exactly as it cuts the full render, counted as truncated
    full = chat.render_chat(big, "flan", vocab)
    rows = []
    for tokens in (cut, full):
        it = pipeline.batches([chat.chat_example(tokens)], "decoder", LENGTHS, 1, pack=False)
        rows.append(next(iter(it)))
        assert it.stats.truncated == 1 and it.stats.examples == 1
    for key in rows[0]:
        np.testing.assert_array_equal(rows[0][key], rows[1][key], err_msg=key)


def _flat_chat_spec(tmp_path, rows):
    path = tmp_path / "talk.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return datasources.local_spec("talk", str(path), "chat", ("train",), ())


def test_few_shot_exemplar_and_prompt_cost_is_bounded(tmp_path, vocab):
    normal = [{"messages": [{"role": "user", "content": f"Question {j}?"},
                            {"role": "assistant", "content": f"Answer {j}."}]} for j in range(6)]
    huge_row = {"messages": _conversation(10_000)}
    spec = _flat_chat_spec(tmp_path, normal + [huge_row])
    fields = [datasources.chat_fields(r) for r in normal + [huge_row]]
    pool = [(fewshot.example_key(f), f) for f in fields]
    config = variants.fitted_config(variants.RenderConfig(), LENGTHS["inputs"])
    work = {}
    for label, example in (("small", fields[0]), ("huge", fields[-1])):
        counting = CountingVocab(vocab)
        renderer = variants.ExampleRenderer(
            spec, "local.talk:fs_noopt", "fs_noopt", tuple(spec.templates), config,
            registry.count_tokens_with(counting, config.few_shot_budget),
            fewshot.fewshot_templates(spec))
        out = renderer(example, pool)  # every other row of the pool is an exemplar candidate
        work[label] = counting.chars
        if label == "huge":  # its prompt alone cannot fit: no exemplar, and dropped (training)
            assert out is None
        else:
            assert out is not None and out["num_shots"] >= 1
            assert len(vocab.encode(out["inputs"])) <= LENGTHS["inputs"]
    # the 600 KB row (as exemplar candidate and as the example) is never tokenized whole
    assert work["huge"] <= 3 * work["small"] + 4 * 2 * LENGTHS["inputs"] * 16 * 4


def test_zero_shot_inputs_are_cut_before_tokenizing_and_still_counted(tmp_path, vocab):
    row = {"messages": _conversation(10_000)}
    spec = _flat_chat_spec(tmp_path, [row])
    fields = datasources.chat_fields(row)
    config = variants.fitted_config(variants.RenderConfig(), LENGTHS["inputs"])
    renderer = variants.ExampleRenderer(spec, "local.talk:zs_noopt", "zs_noopt", tuple(spec.templates),
                                        config, registry.count_tokens_with(vocab, config.few_shot_budget))
    full = variants.ExampleRenderer(spec, "local.talk:zs_noopt", "zs_noopt", tuple(spec.templates),
                                    variants.RenderConfig(), registry.count_tokens_with(vocab))
    cut, whole = renderer(fields), full(fields)
    assert len(whole["inputs"]) > 600_000 and len(cut["inputs"]) < 20_000
    # the cut text still holds more than the row keeps (so the pipeline counts it as truncated),
    # and its first inputs-length tokens are the full text's
    ids_cut, ids_whole = vocab.encode(cut["inputs"]), vocab.encode(whole["inputs"])
    assert len(ids_cut) > LENGTHS["inputs"]
    assert ids_cut[:LENGTHS["inputs"]] == ids_whole[:LENGTHS["inputs"]]


def test_check_reads_the_line_in_linear_time(tmp_path):
    # scan's work: one JSON decode and one pass over the strings; the 10,000-turn line is read
    # with the same number of decoder calls as a 2-turn one (no per-turn re-parsing)
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"messages": _conversation(10_000)}) + "\n", encoding="utf-8")
    calls = []
    real = json_rows._decode
    try:
        json_rows._decode = lambda text, pos=0: (calls.append(len(text)) or real(text, pos))
        result = local_files.scan(path, "chat")
    finally:
        json_rows._decode = real
    assert len(result.rows) == 1 and not result.problems and len(calls) == 1
