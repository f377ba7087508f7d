"""Plain-text components: span corruption against its definition, lm chunks, files, seqio tasks."""
import numpy as np
import pytest

from flan_jax.data.sources import plain_text
from flan_jax.errors import FlanJaxError

SENTINELS = [999 - i for i in range(100)]


def _reconstruct(inputs, targets):
    """Undo span corruption: each sentinel in the inputs becomes the run after it in the targets."""
    spans, current = {}, None
    for t in targets.tolist():
        if t in SENTINELS:
            current = t
            spans[t] = []
        else:
            spans[current].append(t)
    out = []
    for t in inputs.tolist():
        out += spans[t] if t in SENTINELS else [t]
    return out


def test_worked_example():
    inputs, targets = plain_text.span_corruption(np.arange(10, 30), SENTINELS)
    np.testing.assert_array_equal(inputs, list(range(10, 27)) + [999])
    np.testing.assert_array_equal(targets, [999, 27, 28, 29])


@pytest.mark.parametrize("n", [2, 3, 7, 20, 57, 128, 512])
def test_span_corruption_follows_its_definition(n):
    rng = np.random.default_rng(n)
    tokens = rng.integers(2, 900, n)
    inputs, targets = plain_text.span_corruption(tokens, SENTINELS)
    assert _reconstruct(inputs, targets) == tokens.tolist()
    sentinels_in = [t for t in inputs.tolist() if t in SENTINELS]
    num_noise = min(max(round(0.15 * n), 1), n - 1)
    num_spans = min(max(round(num_noise / 3), 1), num_noise, n - num_noise)
    assert sentinels_in == SENTINELS[:num_spans]
    assert len(targets) - num_spans == num_noise
    assert inputs[0] not in SENTINELS  # a kept run first
    again = plain_text.span_corruption(tokens, SENTINELS)
    np.testing.assert_array_equal(again[0], inputs)  # content-seeded: deterministic


def test_mean_span_length_is_three():
    rng = np.random.default_rng(0)
    lengths = []
    for _ in range(200):
        inputs, targets = plain_text.span_corruption(rng.integers(2, 900, 200), SENTINELS)
        num_spans = sum(t in SENTINELS for t in targets.tolist())
        lengths.append((len(targets) - num_spans) / num_spans)
    assert np.mean(lengths) == pytest.approx(3.0, abs=0.01)  # 30 noise tokens in 10 spans


def test_too_few_sentinels_and_short_chunks_are_refused():
    with pytest.raises(FlanJaxError, match="sentinel"):
        plain_text.span_corruption(np.arange(100), [999])
    with pytest.raises(FlanJaxError, match="at least 2"):
        plain_text.span_corruption([5], SENTINELS)


def test_chunks_keep_a_short_last_chunk():
    assert [c.tolist() for c in plain_text.chunks(range(10), 4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_read_documents(tmp_path):
    txt = tmp_path / "a.txt"
    txt.write_text("first doc\nline two\n\n\nsecond doc\n")
    assert plain_text.read_documents(txt) == ["first doc\nline two", "second doc"]
    jl = tmp_path / "a.jsonl"
    jl.write_text('{"text": "one"}\n\n{"text": "two"}\n')
    assert plain_text.read_documents(jl) == ["one", "two"]


@pytest.mark.parametrize("name, content, match", [
    ("e.txt", "\n\n  \n", "no documents"),
    ("b.jsonl", '{"text": "ok"}\n{"text": 5}\n', r"b.jsonl:2: field 'text' must be a non-empty string, found int"),
    ("c.jsonl", '{"text": "ok"}\n{oops\n', r"c.jsonl:2: invalid JSON"),
    ("d.csv", "x", "must be .txt or .jsonl"),
])
def test_bad_files_name_file_and_line(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(FlanJaxError, match=match):
        plain_text.read_documents(path)


class _Vocab:
    """A character vocabulary: id = 3 + ord(c) % 400, extra ids 500..599."""
    vocab_size, extra_ids = 600, 100

    def encode(self, text):
        return [3 + ord(c) % 400 for c in text]

    def decode(self, ids):
        return "".join(chr(i - 3) for i in ids if 3 <= i < 403)


def test_lm_examples_train_every_token_and_span_examples_use_extra_ids():
    docs = ["abcdefghij", "klm"]
    lm = list(plain_text.examples(docs, _Vocab(), "lm", 4))
    assert [e["targets"].tolist() for e in lm] == [_Vocab().encode(s) for s in ("abcd", "efgh", "ij", "klm")]
    assert all(e["inputs"].size == 0 for e in lm)
    sc = list(plain_text.examples(["abcdefghijklmnopqrst"], _Vocab(), "span_corruption", 20))
    assert sc[0]["inputs"][-1] == 599 and sc[0]["targets"][0] == 599  # extra id 0 = vocab_size - 1


@pytest.mark.slow
def test_registered_lm_task_reads_as_seqio(tmp_path):
    import seqio
    from flan_jax.data.tasks.registry import default_vocabulary

    (tmp_path / "train.txt").write_text("The quick brown fox jumps over the lazy dog.\n\nA second document here.\n")
    name = plain_text.register_plain_text_task("probe_t", str(tmp_path / "{split}.txt"), objective="lm",
                                               chunk_length=8)
    ds = seqio.get_mixture_or_task(name).get_dataset({"inputs": 16, "targets": 16}, split="train",
                                                     shuffle=False, use_cached=False)
    rows = list(ds.as_numpy_iterator())
    vocab = default_vocabulary()
    ids = vocab.encode("The quick brown fox jumps over the lazy dog.")
    assert rows[0]["targets"].tolist() == ids[:8] + [1]  # a chunk + EOS
    with pytest.raises(FlanJaxError, match="extra ids"):
        plain_text.register_plain_text_task("probe_s", str(tmp_path / "{split}.txt"),
                                            objective="span_corruption")
