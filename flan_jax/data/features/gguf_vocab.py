"""A sentencepiece vocabulary rebuilt from a GGUF file's tokenizer metadata.

A GGUF checkpoint carries no tokenizer.model, but llama.cpp's converter stores everything a
sentencepiece model holds as metadata (ggml docs/gguf.md, "Tokenizer"):

    tokenizer.ggml.model          "llama" (sentencepiece BPE) or "t5" (sentencepiece unigram)
    tokenizer.ggml.tokens         the pieces, id order            ["<pad>", "<eos>", ..., "▁t", ...]
    tokenizer.ggml.scores         float32 per piece (BPE: merge priority; unigram: log prob)
    tokenizer.ggml.token_type     per piece: 1 normal, 2 unknown, 3 control, 4 user-defined,
                                  5 unused, 6 byte (the same numbers as sentencepiece's Type)
    tokenizer.ggml.{bos,eos,unknown,padding}_token_id, tokenizer.ggml.add_space_prefix,
    tokenizer.ggml.remove_extra_whitespaces, tokenizer.ggml.precompiled_charsmap (unigram/T5 files)

`sentencepiece_model_bytes` writes these into a sentencepiece ModelProto, with four fixes that
the Gemma 3 files need (found by comparing with transformers' tokenizer, see the tests):

* user-defined pieces store whitespace runs with real spaces ("  "); sentencepiece matches the
  escaped text, so their spaces are written as "▁" ("▁▁");
* the unknown-token id is marked UNKNOWN (Gemma's GGUF marks `<unk>` CONTROL, and sentencepiece
  needs exactly one UNKNOWN piece);
* control pieces other than BOS, EOS and padding become user-defined: sentencepiece never matches a
  control piece in text, but llama.cpp (parse_special) and transformers do, so
  "<start_of_turn>user" is [105, 2364] for all three. BOS, EOS and padding stay control pieces:
  the text "<eos>" is the characters, never the EOS id (only the pipeline appends EOS), which is
  the one place these ids differ from transformers' tokenizer;
* no dummy prefix unless `tokenizer.ggml.add_space_prefix` says so (llama.cpp's default for a
  sentencepiece vocabulary without the key is to add one, and so do we);
* identity normalization (unless the file has a precompiled_charsmap), whitespace runs kept
  (unless `tokenizer.ggml.remove_extra_whitespaces`) and no splitting at whitespace
  (`split_by_whitespace` off), so "a  b\\n\\n" keeps its user-defined run pieces.

Byte fallback is on when the file has byte pieces (`<0x00>`..`<0xFF>`). Gemma 3 270M (262,144
pieces) ids: pad 0, eos 1, bos 2, unk 3. The model file is cached under
`<cache>/vocab/gguf_<hash>.model` (cache as in `user_cache.cache_dir()`), keyed by the sha256 of the
GGUF header + metadata bytes, this module's BUILD_VERSION and the sentencepiece version; it is
written atomically, so concurrent builders never expose a half-written model.

    vocab = gguf_vocabulary("gemma-3-270m-q4_k_m.gguf")      # a seqio.SentencePieceVocabulary
    vocab.encode("Hello  world\\n")  -> ids of ["Hello", "▁▁", "world", "\\n"] (no BOS, no EOS)

Errors (FlanJaxError naming the file and key): not a GGUF file, a missing tokenizer key, a
tokenizer model that is not sentencepiece (e.g. "gpt2" byte-level BPE), lists of different
lengths, a duplicate or empty piece, a model sentencepiece refuses.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from flan_jax.errors import FlanJaxError
from flan_jax.user_cache import atomic_write, cache_dir

if TYPE_CHECKING:
    import seqio

    from flan_jax.formats.gguf_file import GGUFFile

BUILD_VERSION = 1  # bump when the built model changes for the same metadata
MODEL_TYPES = {"llama": 2, "t5": 1}  # tokenizer.ggml.model -> ModelProto TrainerSpec.ModelType (BPE, UNIGRAM)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPACE = "\u2581"  # sentencepiece's escaped space "▁"
PACKAGED = {"gguf:gemma-3-270m": "gemma3_270m"}  # names `vocabulary_file.path` may use


def sentencepiece_model_bytes(f: "GGUFFile") -> bytes:
    """A serialized sentencepiece ModelProto equivalent to the tokenizer in `f`'s metadata."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    kind = f.get("tokenizer.ggml.model")
    if kind not in MODEL_TYPES:
        raise FlanJaxError(
            f"{f.path}: tokenizer.ggml.model {kind!r} is not a sentencepiece vocabulary "
            f"(supported: {', '.join(MODEL_TYPES)})"
        )
    tokens = list(f.get("tokenizer.ggml.tokens"))
    n = len(tokens)
    scores = np.asarray(f.get("tokenizer.ggml.scores", np.zeros(n)), np.float32)
    types = np.asarray(f.get("tokenizer.ggml.token_type", np.full(n, NORMAL)), np.int64)
    for key, values in (("tokenizer.ggml.scores", scores), ("tokenizer.ggml.token_type", types)):
        if len(values) != n:
            raise FlanJaxError(f"{f.path}: {key} has {len(values)} entries, tokenizer.ggml.tokens has {n}")
    special = {}
    for role, key in (("unk", "unknown_token_id"), ("bos", "bos_token_id"), ("eos", "eos_token_id"),
                      ("pad", "padding_token_id")):
        value = f.get(f"tokenizer.ggml.{key}", None)
        if value is not None and not 0 <= int(value) < n:
            raise FlanJaxError(f"{f.path}: tokenizer.ggml.{key} = {value} is outside the {n} tokens")
        special[role] = -1 if value is None else int(value)
    if special["unk"] < 0:
        raise FlanJaxError(f"{f.path}: missing GGUF metadata key 'tokenizer.ggml.unknown_token_id'")

    reserved = {special["bos"], special["eos"], special["pad"]}
    model = pb.ModelProto()
    seen: dict[str, int] = {}
    for i, (token, score, kind_id) in enumerate(zip(tokens, scores, types)):
        kind_id = int(kind_id)
        if i == special["unk"]:
            kind_id = UNKNOWN
        elif kind_id == CONTROL and i not in reserved:
            kind_id = USER_DEFINED  # matched in text, as llama.cpp and transformers do
        elif kind_id == UNKNOWN or kind_id not in (NORMAL, CONTROL, USER_DEFINED, UNUSED, BYTE):
            kind_id = NORMAL  # only the unknown-token id is UNKNOWN; 0 (undefined) reads as normal
        if kind_id == USER_DEFINED:
            token = token.replace(" ", SPACE)
        if not token:
            raise FlanJaxError(f"{f.path}: tokenizer.ggml.tokens[{i}] is empty")
        if token in seen:
            raise FlanJaxError(f"{f.path}: tokenizer.ggml.tokens[{i}] {token!r} repeats token {seen[token]}")
        seen[token] = i
        model.pieces.add(piece=token, score=float(score), type=kind_id)

    trainer = model.trainer_spec
    trainer.model_type = MODEL_TYPES[kind]
    trainer.vocab_size = n
    trainer.byte_fallback = bool(np.any(types == BYTE))
    trainer.split_by_whitespace = False
    trainer.allow_whitespace_only_pieces = True
    trainer.split_digits = False  # an encoding no-op: digits are whatever the pieces say
    for role, token_id in special.items():
        setattr(trainer, f"{role}_id", token_id)
        if token_id >= 0:
            setattr(trainer, f"{role}_piece", model.pieces[token_id].piece)
    normalizer = model.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = bool(f.get("tokenizer.ggml.add_space_prefix", True))
    normalizer.remove_extra_whitespaces = bool(f.get("tokenizer.ggml.remove_extra_whitespaces", False))
    normalizer.escape_whitespaces = True
    charsmap = f.get("tokenizer.ggml.precompiled_charsmap", None)
    if charsmap is not None and len(charsmap):  # unigram (T5) files carry their normalizer
        normalizer.name = "nmt_nfkc"
        normalizer.precompiled_charsmap = np.asarray(charsmap, np.uint8).tobytes()
    data = model.SerializeToString()
    _check_loads(data, f.path)
    return data


def _check_loads(data: bytes, path: Path) -> None:
    import sentencepiece as spm

    try:
        spm.SentencePieceProcessor(model_proto=data).get_piece_size()
    except (RuntimeError, OSError) as e:
        raise FlanJaxError(f"{path}: sentencepiece refuses the tokenizer rebuilt from GGUF metadata ({e})") from None


def resolve_gguf_path(path: str | os.PathLike) -> Path:
    """`gguf:gemma-3-270m` -> the packaged file (optional extra); any other path unchanged."""
    if str(path) in PACKAGED:
        from flan_jax.formats.gguf_file import packaged_gemma3_270m

        return packaged_gemma3_270m()
    return Path(path)


def is_gguf_path(path: str | os.PathLike) -> bool:
    """True for a `.gguf` file name or a packaged name such as `gguf:gemma-3-270m`."""
    return str(path) in PACKAGED or str(path).lower().endswith(".gguf")


# (GGUF path, size, mtime_ns, inode, cache folder) -> the .model path built from it: parsing the
# header of Gemma 3 270M's GGUF (262,144 token strings) takes ~0.4 s, and a tuning asks for the
# default vocabulary once per task (37 times for the flan-nl mixture).
_MODEL_PATHS: dict[tuple, Path] = {}


def gguf_model_path(path: str | os.PathLike, cache: str | os.PathLike | None = None) -> Path:
    """The cached sentencepiece .model rebuilt from the GGUF at `path` (built if absent).

    Remembered per process for an unchanged file (same size, mtime and inode) and cache folder,
    and rebuilt when the .model file was removed since."""
    import sentencepiece

    from flan_jax.formats.gguf_file import read_gguf

    gguf = resolve_gguf_path(path)
    folder = (Path(cache) if cache is not None else cache_dir()) / "vocab"
    try:
        st = os.stat(gguf)
        seen = (str(gguf), st.st_size, st.st_mtime_ns, st.st_ino, str(folder))
    except OSError:
        seen = None  # read_gguf names the file and the reason
    if seen in _MODEL_PATHS and _MODEL_PATHS[seen].exists():
        return _MODEL_PATHS[seen]
    f = read_gguf(gguf)
    key = hashlib.sha256(
        f"{f.metadata_sha256}/{BUILD_VERSION}/{getattr(sentencepiece, '__version__', '?')}".encode()
    ).hexdigest()[:16]
    out = folder / f"gguf_{key}.model"
    if not out.exists():
        atomic_write(sentencepiece_model_bytes(f), out)
    if seen is not None:
        _MODEL_PATHS[seen] = out
    return out


def gguf_vocabulary(path: str | os.PathLike, cache: str | os.PathLike | None = None) -> "seqio.SentencePieceVocabulary":
    """A seqio vocabulary from the tokenizer metadata of the GGUF at `path`."""
    import seqio

    return seqio.SentencePieceVocabulary(str(gguf_model_path(path, cache)))

