"""Default vocabulary: ids, exact round trips, caching, deterministic builds, load errors."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sentencepiece as spm

from flan_jax.data.templates import flan_mini
from flan_jax.data.features import vocab
from flan_jax.data.templates.render import render
from flan_jax.errors import FlanJaxError


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One build of the default vocabulary into a fresh cache dir, shared by this module."""
    cache = tmp_path_factory.mktemp("cache")
    path = vocab.default_vocabulary_path(cache)
    return cache, path


@pytest.fixture(scope="module")
def seqio_vocab(built):
    return vocab.load_vocabulary(built[1])


def _validation_texts() -> list[str]:
    """flan-mini text the vocabulary was not trained on (validation rows, every template)."""
    texts = []
    for spec in flan_mini.all_datasets():
        src = spec.sources[spec.name]
        for t, row in enumerate(src.generate(src.split_seeds["validation"], 10)):
            texts += render(spec, t, row, with_options=spec.has_options)
    return texts


def test_special_ids_follow_t5(built, seqio_vocab):
    sp = spm.SentencePieceProcessor(model_file=str(built[1]))
    assert (sp.pad_id(), sp.eos_id(), sp.unk_id(), sp.bos_id()) == (0, 1, 2, -1)
    assert [sp.id_to_piece(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]
    assert sp.get_piece_size() == vocab.VOCAB_SIZE == 1024
    assert (seqio_vocab.pad_id, seqio_vocab.eos_id, seqio_vocab.unk_id) == (0, 1, 2)
    assert seqio_vocab.vocab_size == 1024


def test_round_trip_on_flan_mini_and_arbitrary_text(built, seqio_vocab):
    sp = spm.SentencePieceProcessor(model_file=str(built[1]))
    texts = _validation_texts() + [
        "Ünïcode ✓ 漢字 and emoji 🙂",  # not in the training text: byte fallback
        "tab\there,  two spaces\n\nOPTIONS:\n- yes",
    ]
    for text in texts:
        ids = seqio_vocab.encode(text)
        assert ids == sp.encode(text), text  # seqio and raw sentencepiece agree
        assert 2 not in ids, f"unk in {text!r}"  # byte fallback: nothing is unknown
        assert seqio_vocab.decode(ids) == text


def test_round_trip_through_tensorflow(seqio_vocab):
    import tensorflow as tf

    text = "Which is larger, 29 or 97?\n\nOPTIONS:\n- 29\n- 97"
    ids = seqio_vocab.encode_tf(tf.constant(text))
    assert ids.numpy().tolist() == seqio_vocab.encode(text)
    assert seqio_vocab.decode_tf(ids).numpy().decode("utf-8") == text


def test_digits_are_single_tokens(built):
    sp = spm.SentencePieceProcessor(model_file=str(built[1]))
    pieces = sp.encode("12,345", out_type=str)
    assert [p for p in pieces if p.strip("▁")] == ["1", "2", ",", "3", "4", "5"]


def test_second_call_reuses_the_cached_file(built, monkeypatch):
    cache, path = built
    mtime = path.stat().st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("the vocabulary was trained again")

    monkeypatch.setattr(vocab, "train_vocabulary", no_training)
    assert vocab.default_vocabulary_path(cache) == path  # in-process memo
    monkeypatch.setattr(vocab, "_BUILT", {})  # as a new process would: found by its hash name
    assert vocab.default_vocabulary_path(cache) == path
    monkeypatch.setenv("FLAN_JAX_CACHE", str(cache))
    assert vocab.default_vocabulary().vocab_size == 1024
    assert path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in (cache / "vocab").iterdir()) == [path.name]  # no temp files


def test_cache_dir_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FLAN_JAX_CACHE", str(tmp_path))
    assert vocab.cache_dir() == tmp_path
    monkeypatch.delenv("FLAN_JAX_CACHE")
    assert vocab.cache_dir() == Path.home() / ".cache" / "flan_jax"


_BUILD = "import sys; from flan_jax.data.features import vocab; print(vocab.default_vocabulary_path(sys.argv[1]))"


@pytest.mark.slow
def test_fresh_builds_are_byte_identical(built, tmp_path):
    outputs = []
    for i, hash_seed in enumerate(("0", "4242")):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run([sys.executable, "-c", _BUILD, str(tmp_path / f"c{i}")], env=env,
                             check=True, capture_output=True, text=True)
        outputs.append(Path(out.stdout.strip().splitlines()[-1]))
    assert outputs[0].parent != outputs[1].parent
    assert outputs[0].name == outputs[1].name == built[1].name
    assert outputs[0].read_bytes() == outputs[1].read_bytes() == built[1].read_bytes()


def test_train_vocabulary_small_custom(tmp_path):
    texts = [f"the number {i} is here" for i in range(200)]
    out = vocab.train_vocabulary(texts, tmp_path / "sub" / "tiny.model", vocab_size=300)
    sp = spm.SentencePieceProcessor(model_file=str(out))
    assert sp.get_piece_size() == 300 and sp.eos_id() == 1
    assert sp.decode(sp.encode("the number 7 is here")) == "the number 7 is here"


def test_train_vocabulary_errors_name_the_path(tmp_path):
    target = tmp_path / "too_big.model"
    with pytest.raises(FlanJaxError, match="too_big.model"):
        vocab.train_vocabulary(["a b c"] * 10, target, vocab_size=5000)
    with pytest.raises(FlanJaxError, match="no training text"):
        vocab.train_vocabulary([], target)
    assert not target.exists()


def test_load_vocabulary_extra_ids(built):
    assert vocab.load_vocabulary(built[1], extra_ids=100).vocab_size == 1124


@pytest.mark.parametrize("kind", ["missing", "directory", "garbage", "empty"])
def test_load_vocabulary_bad_files(tmp_path, kind):
    path = tmp_path / f"{kind}.model"
    if kind == "directory":
        path.mkdir()
    elif kind == "garbage":
        path.write_bytes(bytes(range(256)) * 3)
    elif kind == "empty":
        path.write_bytes(b"")
    expected = {"missing": "not found", "directory": "cannot read",
                "garbage": "not a sentencepiece model", "empty": "not a sentencepiece model"}
    with pytest.raises(vocab.VocabularyError) as info:
        vocab.load_vocabulary(path)
    assert str(path) in str(info.value) and expected[kind] in str(info.value)


def test_every_printable_ascii_character_has_a_piece(built):
    import string

    sp = spm.SentencePieceProcessor(model_file=str(built[1]))
    for ch in string.ascii_letters + string.digits + string.punctuation:
        assert not sp.is_byte(sp.piece_to_id(ch)) and sp.piece_to_id(ch) != 2, ch


def test_vocabulary_file_binding_replaces_the_default(tmp_path, monkeypatch):
    """A user vocabulary (gin `vocabulary_file.path` or $FLAN_JAX_VOCAB) is what tasks get."""
    import gin

    from flan_jax.data.features import vocab as vocab_lib

    user_model = vocab_lib.train_vocabulary(["alpha beta gamma delta " * 50, "one two three"],
                                            tmp_path / "user.model", 300)
    default_size = vocab_lib.default_vocabulary().vocab_size
    monkeypatch.setenv(vocab_lib.VOCAB_ENV, str(user_model))
    assert vocab_lib.default_vocabulary().vocab_size == 300 != default_size
    monkeypatch.delenv(vocab_lib.VOCAB_ENV)
    with gin.unlock_config():
        gin.bind_parameter("vocabulary_file.path", str(user_model))
    try:
        assert vocab_lib.default_vocabulary().vocab_size == 300
        gin.bind_parameter("vocabulary_file.path", str(tmp_path / "missing.model"))
        with pytest.raises(vocab_lib.VocabularyError, match="missing.model"):
            vocab_lib.default_vocabulary()
    finally:
        gin.clear_config()
    assert vocab_lib.default_vocabulary().vocab_size == default_size


def test_sentencepiece_errors_are_clean_and_a_vocab_text_file_gets_a_hint(tmp_path, built):
    renamed = tmp_path / "spiece.model"
    renamed.write_text("<pad>\t0\n</s>\t0\n<unk>\t0\n▁the\t-1.5\n")  # a .vocab file
    with pytest.raises(vocab.VocabularyError) as info:
        vocab.load_vocabulary(renamed)
    message = str(info.value)
    assert message.startswith(f"{renamed}: not a sentencepiece model (cannot parse the file)")
    assert ".vocab text file" in message and "INTERNAL" not in message and ".cc(" not in message
    truncated = tmp_path / "half.model"
    truncated.write_bytes(built[1].read_bytes()[:100])
    with pytest.raises(vocab.VocabularyError) as info:
        vocab.load_vocabulary(truncated)
    assert "INTERNAL" not in str(info.value) and ".vocab text file" not in str(info.value)
    with pytest.raises(vocab.VocabularyError) as info:
        vocab.train_vocabulary(["ab"], tmp_path / "v.model", vocab_size=5000)
    assert "Vocabulary size too high (5000)" in str(info.value) and "INTERNAL" not in str(info.value)
