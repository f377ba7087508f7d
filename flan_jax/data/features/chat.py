"""Chat templates: a list of {"role", "content"} messages -> token ids + a per-token loss mask.

Every template is applied the same way: for each message a role header, the content, an
end-of-turn marker and a separator. The loss mask is 1 on the content of *every* assistant turn
and on its end-of-turn marker (so the model learns to stop), 0 on everything else (headers,
system and user turns, separators).

The pieces are tokenized one at a time and concatenated, so the mask lines up with the ids exactly
(tokenizing the joined string could merge a header with the first content token).

Special strings and BOS (the chat-template policy of docs/data.md, "Bad input policy"):

* A template's special strings (`ChatTemplate.specials`, e.g. `<|im_start|>`, `<end_of_turn>`)
  become single vocabulary ids or the template is refused: `special_token_ids` takes each from
  `special_ids` when given, else from the vocabulary (a sentencepiece piece spelled exactly so),
  and otherwise raises one FlanJaxError naming the template and the string. The mapping applies
  in the markup only; message content is tokenized by the vocabulary as it is (the Gemma GGUF
  vocabulary matches its turn markers in text, as llama.cpp and transformers do). `markup="text"`
  is the explicit way to train the markup as plain text (e.g. a model trained from scratch on a
  vocabulary without those tokens).
* A template's BOS string (`<bos>`, `<|begin_of_text|>`) is never rendered: it stands for the
  model's BOS, which the feature converter writes at each row start (`converters.model_bos_id`),
  so a row starts with exactly one BOS whatever the template and model (the converter refuses
  an example whose tokens already start with it).

Worked example (ChatML, a vocabulary where each character is one token, markup="text"):

    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    text  = "<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\nYo<|im_end|>\\n"
    mask  = 0 on "<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n",
            1 on "Yo<|im_end|>", 0 on the final "\\n"

The four templates (markup from the public formats):

* `flan`: FLAN-style plain text. Turns are separated by a blank line, the assistant turn ends with
  the vocabulary's EOS id (as a FLAN target does). No role names, no special strings.
* `chatml`: `<|im_start|>{role}\\n{content}<|im_end|>\\n`.
* `llama3`: BOS (`<|begin_of_text|>`), then `<|start_header_id|>{role}<|end_header_id|>\\n\\n{content}<|eot_id|>`.
* `gemma`: BOS (`<bos>`), then `<start_of_turn>{role}\\n{content}<end_of_turn>\\n` with the assistant
  role named `model`; Gemma has no system role, so a system message is put in front of the first
  user message, separated by a blank line.

Cost: `lengths` ({"inputs": Li, "targets": Lt}, the lengths the rows are cut to) stops the
tokenization once the part before the first assistant token holds more than Li tokens (the later
untrained pieces are skipped untokenized) and once the rest holds more than Lt: the pipeline cuts
the example exactly as it would cut the full render (and counts it as truncated), in time
proportional to what is kept plus one pass over the turns.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from flan_jax.errors import FlanJaxError

ROLES = ("system", "user", "assistant")
EOS_MARKER = None  # an `end` of None means "the vocabulary's EOS id"
MARKUP_MODES = ("special", "text")


class Encoder(Protocol):
    """What chat rendering needs from a vocabulary (seqio.SentencePieceVocabulary has both)."""

    eos_id: int

    def encode(self, s: str) -> Sequence[int]: ...


@dataclasses.dataclass(frozen=True)
class ChatTemplate:
    """Markup around each message; `{role}` in a header is replaced by the role's name."""

    name: str
    bos: str  # the model's BOS in the template's spelling: written by the converter, not here
    header: str  # before each message's content (not trained)
    end: Mapping[str, str | None]  # end-of-turn marker per role (trained on assistant turns)
    separator: str  # after each end marker (not trained)
    role_names: Mapping[str, str] = dataclasses.field(default_factory=dict)
    merge_system: bool = False  # no system role: prepend it to the first user message
    specials: tuple[str, ...] = ()  # markup strings that must be single vocabulary ids


TEMPLATES: dict[str, ChatTemplate] = {
    "flan": ChatTemplate(
        name="flan", bos="", header="", separator="",
        end={"system": "\n\n", "user": "\n\n", "assistant": EOS_MARKER}),
    "chatml": ChatTemplate(
        name="chatml", bos="", header="<|im_start|>{role}\n", separator="\n",
        end={role: "<|im_end|>" for role in ROLES}, specials=("<|im_start|>", "<|im_end|>")),
    "llama3": ChatTemplate(
        name="llama3", bos="<|begin_of_text|>",
        header="<|start_header_id|>{role}<|end_header_id|>\n\n", separator="",
        end={role: "<|eot_id|>" for role in ROLES},
        specials=("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")),
    "gemma": ChatTemplate(
        name="gemma", bos="<bos>", header="<start_of_turn>{role}\n", separator="\n",
        end={role: "<end_of_turn>" for role in ROLES},
        role_names={"assistant": "model"}, merge_system=True,
        specials=("<start_of_turn>", "<end_of_turn>")),
}


class ChatTokens(NamedTuple):
    ids: np.ndarray  # int32 [length]
    loss_mask: np.ndarray  # int32 [length], 1 on assistant content + end-of-turn marker


def get_template(name: str) -> ChatTemplate:
    if name not in TEMPLATES:
        raise FlanJaxError(f"unknown chat template {name!r}; expected one of {sorted(TEMPLATES)}")
    return TEMPLATES[name]


def _check_messages(messages: Sequence[Mapping[str, Any]], where: str) -> None:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise FlanJaxError(f"{where}: messages must be a list of {{'role', 'content'}} dicts")
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping) or "role" not in msg or "content" not in msg:
            raise FlanJaxError(f"{where}: messages[{i}] needs 'role' and 'content' keys, got {msg!r}")
        if msg["role"] not in ROLES:
            raise FlanJaxError(f"{where}: messages[{i}] has role {msg['role']!r}; expected one of {ROLES}")
        if not isinstance(msg["content"], str):
            raise FlanJaxError(f"{where}: messages[{i}] content must be a string")


def _merge_system(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Gemma-style: fold system messages into the next user message ("system\\n\\nuser")."""
    out: list[Mapping[str, Any]] = []
    pending: list[str] = []
    for msg in messages:
        if msg["role"] == "system":
            pending.append(msg["content"])
        elif msg["role"] == "user" and pending:
            out.append({"role": "user", "content": "\n\n".join([*pending, msg["content"]])})
            pending = []
        else:
            out.append(msg)
    if pending:  # a system message with no user message after it becomes a user turn
        out.append({"role": "user", "content": "\n\n".join(pending)})
    return out


def render_pieces(
    messages: Sequence[Mapping[str, Any]], template: ChatTemplate | str, where: str = "chat"
) -> list[tuple[str | None, int, bool]]:
    """The conversation as (text, trained, is_markup) pieces; text None stands for the EOS id.
    The template's BOS is not a piece (the converter writes the model's BOS)."""
    template = get_template(template) if isinstance(template, str) else template
    _check_messages(messages, where)
    if template.merge_system:
        messages = _merge_system(messages)
    pieces: list[tuple[str | None, int, bool]] = []
    for msg in messages:
        role = msg["role"]
        trained = int(role == "assistant")
        pieces.append((template.header.format(role=template.role_names.get(role, role)), 0, True))
        pieces.append((msg["content"], trained, False))
        pieces.append((template.end[role], trained, True))
        pieces.append((template.separator, 0, True))
    return [piece for piece in pieces if piece[0] != ""]


def render_text(messages: Sequence[Mapping[str, Any]], template: ChatTemplate | str, eos: str = "</s>") -> str:
    """The rendered conversation as one string (for reading; training uses `render_chat`),
    without the BOS the converter adds."""
    return "".join(eos if text is None else text for text, _, _ in render_pieces(messages, template))


def _vocab_name(vocab: Any) -> str:
    return str(getattr(vocab, "sentencepiece_model_file", None) or type(vocab).__name__)


def _single_id(vocab: Any, text: str) -> int | None:
    """The id of the sentencepiece piece spelled exactly `text` (not unknown, unused or a byte)."""
    sp = getattr(vocab, "tokenizer", None)
    if sp is None or not hasattr(sp, "piece_to_id"):
        return None
    token = int(sp.piece_to_id(text))
    if sp.id_to_piece(token) != text or sp.is_unknown(token) or sp.is_unused(token) or sp.is_byte(token):
        return None
    return token


def special_token_ids(
    template: ChatTemplate | str,
    vocab: Any,
    special_ids: Mapping[str, int] | None = None,
    markup: str = "special",
) -> dict[str, int]:
    """The single id of each of the template's special strings, or one FlanJaxError naming the
    template and the first string the vocabulary lacks (module doc). `special_ids` overrides the
    vocabulary's ids; `markup="text"` returns {} (markup tokenized as plain text).

        "gemma", the Gemma 3 vocabulary -> {"<start_of_turn>": 105, "<end_of_turn>": 106}
        "chatml", the flan-mini vocabulary -> FlanJaxError("chat template 'chatml': '<|im_start|>'
            is not one token of the vocabulary ...")
    """
    template = get_template(template) if isinstance(template, str) else template
    if markup not in MARKUP_MODES:
        raise FlanJaxError(f"chat markup {markup!r}: expected one of {MARKUP_MODES}")
    given = dict(special_ids or {})
    for text, token in given.items():
        if not isinstance(token, (int, np.integer)) or isinstance(token, bool) or token <= 0:
            raise FlanJaxError(f"chat template {template.name!r}: special_ids[{text!r}] = {token!r}; "
                               "ids are ints > 0 (0 is padding)")
    if markup == "text":
        return given
    out = {}
    for text in template.specials:
        token = given.get(text, _single_id(vocab, text))
        if token is None:
            raise FlanJaxError(
                f"chat template {template.name!r}: {text!r} is not one token of the vocabulary "
                f"({_vocab_name(vocab)}); use a vocabulary that has it, pass special_ids, use "
                "template 'flan', or markup='text' to train the markup as plain text")
        out[text] = int(token)
    return {**given, **out}


def _encode_markup(text: str, vocab: Encoder, special_ids: Mapping[str, int]) -> list[int]:
    """Markup with its special tokens as single ids, the text between them tokenized normally."""
    if not special_ids:
        return list(vocab.encode(text))
    pattern = "(" + "|".join(re.escape(k) for k in sorted(special_ids, key=len, reverse=True)) + ")"
    ids: list[int] = []
    for part in re.split(pattern, text):
        if part in special_ids:
            ids.append(special_ids[part])
        elif part:
            ids.extend(vocab.encode(part))
    return ids


def render_chat(
    messages: Sequence[Mapping[str, Any]],
    template: ChatTemplate | str,
    vocab: Encoder,
    special_ids: Mapping[str, int] | None = None,
    where: str = "chat",
    markup: str = "special",
    lengths: Mapping[str, int] | None = None,
) -> ChatTokens:
    """Tokenize a conversation piece by piece: ids and an aligned loss mask (see module doc).

    The template's special strings become single ids (`special_token_ids`: from `special_ids`,
    else the vocabulary; refused when missing unless `markup="text"`); they are matched only
    inside the template's markup, never inside message content. `lengths` bounds the work to
    what the rows keep (module doc, "Cost").
    """
    template = get_template(template) if isinstance(template, str) else template
    ids_of = special_token_ids(template, vocab, special_ids, markup)
    pieces = render_pieces(messages, template, where)
    li = lt = None
    if lengths is not None:
        li, lt = int(lengths["inputs"]), int(lengths["targets"])
    ids: list[int] = []
    mask: list[int] = []
    prefix = 0  # tokens before the first trained token
    for text, trained, is_markup in pieces:
        started = prefix < len(ids)
        if li is not None:
            if not started and not trained and prefix > li:
                continue  # an untrained piece the row's inputs part can no longer hold
            if started and len(ids) - prefix > lt:
                break  # the targets part is full: nothing later is kept
        if text is None:
            piece_ids = [vocab.eos_id]
        elif is_markup:
            piece_ids = _encode_markup(text, vocab, ids_of)
        else:
            piece_ids = list(vocab.encode(text))
        if not started and not trained:
            prefix += len(piece_ids)
        ids.extend(piece_ids)
        mask.extend([trained] * len(piece_ids))
    return ChatTokens(np.asarray(ids, np.int32), np.asarray(mask, np.int32))


def chat_example(tokens: ChatTokens) -> dict[str, np.ndarray]:
    """A rendered chat as a pipeline example: inputs up to the first trained token, the rest as
    targets with their `loss_weights` (later user turns stay in the targets with weight 0).

        ids  = [5, 6, 7, 8, 1, 9, 4, 1]      mask = [0, 0, 1, 1, 1, 0, 1, 1]
        -> inputs [5, 6], targets [7, 8, 1, 9, 4, 1], loss_weights [1, 1, 1, 0, 1, 1]

    With no trained token at all (no assistant turn), targets are empty and the pipeline counts
    the example as zero-loss and drops it.
    """
    trained = np.flatnonzero(tokens.loss_mask)
    first = int(trained[0]) if trained.size else tokens.ids.size
    return {
        "inputs": tokens.ids[:first],
        "targets": tokens.ids[first:],
        "loss_weights": tokens.loss_mask[first:],
    }
