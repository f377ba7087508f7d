"""The default sentencepiece vocabulary: trained from bundled text, cached, byte-fallback.

Why our own: the main job trains a tiny model from scratch on flan-mini, and a 32k T5 vocabulary
would spend most of its parameters on embeddings it never sees. So the default vocabulary is a
small BPE model (VOCAB_SIZE = 1024 pieces, a multiple of 128 so the embedding shards evenly)
trained on text that ships with the package: every flan-mini template rendered over a few rows,
plus the bundled alpaca and chat samples. `byte_fallback` makes any text encodable (unseen
characters become UTF-8 byte pieces) and `split_digits` gives one token per digit, which the
arithmetic and formatting tasks need. Ids follow T5: pad=0, eos=1, unk=2, no BOS.

    vocab = default_vocabulary()
    vocab.encode("What is 15 plus 13?")
        -> [..."▁What", "▁is", "▁", "1", "5", "▁plus", "▁", "1", "3", "?"] as ids
    vocab.decode(vocab.encode(text)) == text    # identity normalization: exact round trip

The model file is built once per cache directory (env FLAN_JAX_CACHE, default
~/.cache/flan_jax) under vocab/flan_mini_bpe1024_<hash>.model, where <hash> covers the training
text, the trainer options and the sentencepiece version; it is written to a temporary file and
renamed, so concurrent builders never expose a half-written model. Training is deterministic
(fixed text order, one thread, no sampling/shuffling): two fresh builds give identical bytes.

A user vocabulary (e.g. the T5 `sentencepiece.model`, or a GGUF checkpoint's tokenizer: a
`*.gguf` path) is loaded with `load_vocabulary(path)`.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import io
import json
import os
import re
import string
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gin

from flan_jax.errors import FlanJaxError
from flan_jax.user_cache import atomic_write, cache_dir  # noqa: F401  (cache_dir: public here too)

if TYPE_CHECKING:
    import seqio

PAD_ID, EOS_ID, UNK_ID = 0, 1, 2
VOCAB_SIZE = 1024
# Rows of each flan-mini dataset rendered through each template for the training text.
ROWS_PER_TEMPLATE = 8
SAMPLE_FILES: tuple[str, ...] = ("alpaca_sample.jsonl", "chat_sample.jsonl")

# Everything that shapes the model besides the text and the vocabulary size. BPE rather than
# unigram: on this small corpus unigram cannot reach 1024 pieces and keeps common words split.
TRAINER_OPTIONS: dict[str, Any] = {
    "model_type": "bpe",
    "pad_id": PAD_ID, "eos_id": EOS_ID, "unk_id": UNK_ID, "bos_id": -1,
    "pad_piece": "<pad>", "eos_piece": "</s>", "unk_piece": "<unk>",
    "byte_fallback": True,
    "split_digits": True,
    "character_coverage": 1.0,
    # Identity normalization and kept whitespace: newlines ("\n\nOPTIONS:") and double spaces
    # survive encode -> decode exactly.
    "normalization_rule_name": "identity",
    "remove_extra_whitespaces": False,
    "add_dummy_prefix": True,
    # Determinism: one thread, every sentence used, in the given order.
    "num_threads": 1,
    "input_sentence_size": 0,
    "shuffle_input_sentence": False,
    "minloglevel": 2,
}


# cache root -> model path found or built by this process (skips re-rendering the text).
_BUILT: dict[Path, Path] = {}


class VocabularyError(FlanJaxError):
    """A vocabulary file is missing, unreadable or not a sentencepiece model (names the path)."""


def _sample_texts() -> list[str]:
    """Strings of the bundled alpaca and chat samples, in file order."""
    texts: list[str] = []
    samples = importlib.resources.files("flan_jax") / "assets" / "samples"
    for name in SAMPLE_FILES:
        for line in (samples / name).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            if "messages" in row:
                texts += [m["content"] for m in row["messages"]]
            else:
                texts += [row[k] for k in ("instruction", "input", "output") if row.get(k)]
    return texts


def vocabulary_texts() -> list[str]:
    """The default vocabulary's training text, in a fixed order.

    For each flan-mini dataset (catalogue order) and template t: train rows
    [t*K, (t+1)*K) with K = ROWS_PER_TEMPLATE, rendered with options on even rows (when the
    dataset has options), giving inputs then targets; then the sample files' strings; then
    one line of every printable ASCII character, so each gets its own piece (an uppercase "X"
    would otherwise fall back to a byte piece when no sampled answer contains it).
    """
    from flan_jax.data.templates import flan_mini
    from flan_jax.data.templates.render import render

    texts: list[str] = []
    k = ROWS_PER_TEMPLATE
    for spec in flan_mini.all_datasets():
        source = spec.sources[spec.name]
        rows = source.generate(source.split_seeds["train"], k * len(spec.templates))
        for t in range(len(spec.templates)):
            for j, row in enumerate(rows[t * k:(t + 1) * k]):
                texts += render(spec, t, row, with_options=spec.has_options and j % 2 == 0)
    ascii_line = " ".join(string.ascii_letters + string.digits + string.punctuation)
    return texts + _sample_texts() + [ascii_line]


def _spm_version() -> str:
    import sentencepiece

    return getattr(sentencepiece, "__version__", "unknown")


def train_vocabulary(
    texts: Iterable[str], out_path: str | os.PathLike, vocab_size: int = VOCAB_SIZE
) -> Path:
    """Trains a sentencepiece model on `texts` (in order) and writes it atomically to out_path.

    Uses TRAINER_OPTIONS (BPE, byte fallback, pad=0/eos=1/unk=2, deterministic). Raises
    VocabularyError when the text cannot support `vocab_size` pieces or is empty.
    """
    import sentencepiece as spm

    texts = [t for t in texts if t]
    out_path = Path(out_path)
    if not texts:
        raise VocabularyError(f"{out_path}: no training text for the vocabulary")
    buffer = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=buffer, vocab_size=vocab_size,
            **TRAINER_OPTIONS,
        )
    except RuntimeError as e:
        raise VocabularyError(
            f"{out_path}: sentencepiece training failed: {spm_reason(e)}") from None
    atomic_write(buffer.getvalue(), out_path)
    return out_path


def default_vocabulary_path(cache: str | os.PathLike | None = None) -> Path:
    """Path of the default model in `cache` (default: cache_dir()), building it if absent."""
    root = Path(cache) if cache is not None else cache_dir()
    known = _BUILT.get(root.resolve())
    if known is not None and known.exists():
        return known
    texts = vocabulary_texts()
    key = hashlib.sha256()
    key.update(json.dumps(
        {"options": TRAINER_OPTIONS, "vocab_size": VOCAB_SIZE, "spm": _spm_version()},
        sort_keys=True,
    ).encode("utf-8"))
    for text in texts:  # length-prefixed so ("ab", "c") and ("a", "bc") differ
        data = text.encode("utf-8")
        key.update(len(data).to_bytes(8, "little") + data)
    path = root / "vocab" / f"flan_mini_bpe{VOCAB_SIZE}_{key.hexdigest()[:16]}.model"
    if not path.exists():
        train_vocabulary(texts, path, VOCAB_SIZE)
    _BUILT[root.resolve()] = path
    return path


def eos_id(vocabulary: Any) -> int:
    """The vocabulary's EOS id, which training appends (seqio), rank classification appends to
    each option, decoding stops at and `score` appends: T5/our vocabulary 1, a Llama-style
    sentencepiece model (unk 0, bos 1, eos 2) 2. An object without an `eos_id` attribute (a
    stand-in with only `encode`) gets T5's 1. Raises VocabularyError when it has none (None,
    -1) or it is 0, the padding id of every batch."""
    if not hasattr(vocabulary, "eos_id"):
        return EOS_ID
    value = vocabulary.eos_id
    if value is None or int(value) <= 0:
        raise VocabularyError(f"vocabulary {getattr(vocabulary, 'sentencepiece_model_file', vocabulary)!r} has "
                              f"eos id {value}; flan_jax needs an EOS id > 0 (0 is padding)")
    return int(value)


def load_vocabulary(path: str | os.PathLike, extra_ids: int = 0) -> "seqio.SentencePieceVocabulary":
    """A seqio vocabulary from a sentencepiece .model file, checked eagerly.

    seqio loads models lazily, so a wrong path would otherwise fail deep inside a data
    pipeline; here a missing, unreadable or non-sentencepiece file raises VocabularyError
    naming the path. `extra_ids=100` reproduces T5's sentinel ids for the T5 vocabulary.
    A GGUF checkpoint (`*.gguf`, or `gguf:gemma-3-270m` for the packaged Gemma 3 270M) gives
    the sentencepiece model rebuilt from its tokenizer metadata (`data/features/gguf_vocab.py`).
    """
    import sentencepiece as spm
    import seqio

    from flan_jax.data.features import gguf_vocab

    if gguf_vocab.is_gguf_path(path):
        path = gguf_vocab.gguf_model_path(path)
    path = Path(path)
    try:
        st = path.stat()
        seen = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    except OSError:
        seen = None  # read_bytes below names the reason
    if seen in _CHECKED:  # checked already in this process (loading it again takes ~60 ms)
        return seqio.SentencePieceVocabulary(str(path), extra_ids=extra_ids)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise VocabularyError(f"{path}: vocabulary file not found") from None
    except OSError as e:
        raise VocabularyError(f"{path}: cannot read vocabulary file ({e.strerror})") from None
    if not data:
        raise VocabularyError(f"{path}: not a sentencepiece model (empty file)")
    try:
        processor = spm.SentencePieceProcessor(model_proto=data)
        size = processor.get_piece_size()
    except (RuntimeError, OSError, TypeError) as e:
        raise VocabularyError(f"{path}: not a sentencepiece model ({spm_reason(e)})"
                              f"{_vocab_text_hint(data)}") from None
    if size <= 0:
        raise VocabularyError(f"{path}: not a sentencepiece model (no pieces)")
    if seen is not None:
        _CHECKED.add(seen)
    return seqio.SentencePieceVocabulary(str(path), extra_ids=extra_ids)


# (path, size, mtime_ns, inode) of the sentencepiece files `load_vocabulary` has checked
_CHECKED: set[tuple] = set()


def spm_reason(e: BaseException) -> str:
    """sentencepiece's error text without its C++ location: "INTERNAL: src/trainer_interface.cc(744)
    [(a) == (b)] Vocabulary size too high (5000). ..." -> "Vocabulary size too high (5000). ..."
    ("cannot parse the file" when nothing but the location is left)."""
    text = str(e).strip()
    text = re.sub(r"^(?:INTERNAL|Internal|[A-Z_]+):\s*", "", text)
    text = re.sub(r"^\S+\.cc\(\d+\)\s*(?:\[.*?\]\s*)?", "", text)
    return text.splitlines()[0] if text else "cannot parse the file"


def _vocab_text_hint(data: bytes) -> str:
    """A hint when the bytes look like a sentencepiece `.vocab` text file ("piece<TAB>score" lines)."""
    try:
        lines = data[:4096].decode("utf-8").splitlines()[:20]
    except UnicodeDecodeError:
        return ""
    if lines and all(len(line.split("\t")) == 2 for line in lines if line):
        return ("; it looks like a sentencepiece .vocab text file (piece<TAB>score lines): pass "
                "the binary .model file trained with it instead")
    return ""


VOCAB_ENV = "FLAN_JAX_VOCAB"


@gin.configurable
def vocabulary_file(path: str | None = None, extra_ids: int = 0) -> tuple[str | None, int]:
    """The user's task vocabulary, if any: gin `vocabulary_file.path = '/ckpts/spiece.model'`
    (e.g. the T5 vocabulary when fine-tuning a converted Flan-T5) or $FLAN_JAX_VOCAB. A `.gguf`
    path (or `gguf:gemma-3-270m`) uses the tokenizer stored in that GGUF checkpoint."""
    return path or os.environ.get(VOCAB_ENV) or None, extra_ids


def default_vocabulary(cache: str | os.PathLike | None = None) -> "seqio.SentencePieceVocabulary":
    """The vocabulary every task uses unless given one: the user's `vocabulary_file` when set,
    else the flan-mini vocabulary (built into the cache on first use, reused afterwards); either
    with `vocabulary_file.extra_ids` sentinel ids (span-corruption text for T5 needs them)."""
    path, extra_ids = vocabulary_file()
    if path:
        return load_vocabulary(path, extra_ids)
    return load_vocabulary(default_vocabulary_path(cache), extra_ids)  # extra ids: T5 sentinels
