"""Few-shot prompts as Flan 2022 builds them, and the deterministic choices behind them.

Source of the structure: google-research/FLAN flan/v2/few_shot.py, flan/v2/tasks.py (the
few-shot loop), flan/v2/templates.py (`FewShotPattern`) and seqio's `fewshot_preprocessor`.

Few-shot templates
------------------
A `FewShotTemplate` frames each exemplar as
`inputs_prefix + inputs + x_y_delimiter + targets_prefix + targets + example_separator`.
A dataset may write its own (`DatasetSpec.fewshot_templates`); otherwise template i is its
zero-shot template i framed by `FEWSHOT_FORMATS[i % 10]` (`fewshot_templates`).

Settings (one per training variant, see flan_jax.data.templates.variants)
----------------------------------------------------------------
* template slot (`fs_opt_t0`, `_t1`, `_t2`): every exemplar and the example in few-shot
  template 0 / 1 / 2 with 5 / 2 / 1 exemplars (FLAN's shot counts per slot).
  `build_slot`:  exemplars  + `prefix + inputs + delimiter + targets_prefix.rstrip()`.
* template mix (`fs_opt`, `fs_noopt`): 5 exemplars, each in its own template drawn from the
  templates with `in_template_mix`, joined by one separator per task out of
  `MIX_SEPARATORS`; the prompt ends with the full targets prefix. `build_mix`.
* x-shot (`fs_opt_x`): 25 candidates, each in its own template drawn from all templates;
  only those drawn in the example's template are kept (2.5 on average with 10 templates); each
  ends with its template's own separator; the example's targets are stripped. `build_x`.

In all three the prompt's trailing spaces are removed (FLAN's
`remove_trailing_spaces_escape_newlines`), exemplars are pruned from the end until exemplars
plus prompt fit `max_tokens` (FLAN: FEW_SHOT_MAX_LEN = 1920 tokens; a run whose inputs length is
shorter prunes to that length, see variants.RenderConfig), and the caller drops an example left
with no exemplar (FLAN's `filter_zero_shot_in_few_shot`). The example's own part is never cut:
only whole exemplars go. What must fit is the joint text (exemplars + prompt + the inputs
suffix), counted as one string, since a tokenizer's count of a concatenation need not be the sum
of the parts' counts.

Worked example (slot setting, template framed as ("Q: ", "A: ", "\n", "\n\n"), 2 exemplars):

    exemplars  ("2+2?", "4"), ("3+1?", "4")     rendered (inputs, targets) pairs
    example    ("1+1?", "2")
    inputs     "Q: 2+2?\nA: 4\n\nQ: 3+1?\nA: 4\n\nQ: 1+1?\nA:"
    targets    "2"

Mix setting, separator "\n", exemplar 1 in ("", "", "\n\n", "\n\n\n"), exemplar 2 and the
example in ("Q: ", "A: ", "\n", "\n\n"):

    inputs     "2+2?\n\n4\nQ: 3+1?\nA: 4\nQ: 1+1?\nA:"

Determinism
-----------
Which template an example uses and which exemplars it gets depend only on
(task name, seed, the example's content key), hashed with SHA-256, never on Python's `hash()`
(salted per process by PYTHONHASHSEED), on import order, or on the example's *position*: TFDS
reads files in a shuffled order when `shuffle_files=True`, and sharded readers see different
positions, so a position-based choice would change between runs. A content key does not.
Exemplars are ranked by a hash of (task, seed, example key, candidate key), so the choice does not
depend on the order of the pool either; a candidate whose key equals the example's key (the example
itself, or an exact duplicate of it) is never chosen. An exemplar's own template (mix, x-shot)
is `choose_template` of the exemplar's key, so a train row looks the same wherever it appears.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from flan_jax.data.templates.spec import DatasetSpec, FewShotTemplate, Template

T = TypeVar("T")


def example_key(fields: Mapping[str, Any]) -> str:
    """A stable content key: SHA-256 of the fields as canonical JSON (sorted keys).

    {"b": 1, "a": "x"} and {"a": "x", "b": 1} have the same key; values JSON cannot hold
    (e.g. tuples, numpy scalars converted earlier) fall back to `str`.
    """
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_int(*parts: Any) -> int:
    """A 64-bit integer from SHA-256 of the parts joined by an ASCII unit separator."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def choose_template(task: str, seed: int, key: str, num_templates: int) -> int:
    """Template index in [0, num_templates) for one example, from (task, seed, key) only."""
    return stable_int("template", task, seed, key) % num_templates


def choose_exemplars(
    task: str, seed: int, key: str, pool: Sequence[tuple[str, T]], k: int
) -> list[T]:
    """The k pool items ranked first by hash(task, seed, key, item key), excluding `key` itself.

    `pool` holds (content key, item) pairs; its order does not matter (ties broken by the key).
    Fewer than k items come back when the pool has fewer other items.
    """
    ranked = sorted(
        (stable_int("exemplar", task, seed, key, item_key), item_key, i)
        for i, (item_key, _) in enumerate(pool)
        if item_key != key
    )
    chosen, seen = [], set()
    for _, item_key, i in ranked:
        if item_key in seen:  # duplicates in the pool count once
            continue
        seen.add(item_key)
        chosen.append(pool[i][1])
        if len(chosen) == k:
            break
    return chosen


# The 10 (inputs_prefix, targets_prefix, x_y_delimiter, example_separator) framings used most
# often by the FLAN 2021 datasets' few-shot patterns in flan/v2/templates.py, most frequent first
# (counted over the 62 datasets x 10 templates: 26, 21, 20, 16, 15, 15, 14, 13, 12, 12 uses).
FEWSHOT_FORMATS: tuple[tuple[str, str, str, str], ...] = (
    ("", "", "\n", "\n\n"),
    ("Q: ", "A: ", "\n", "\n\n"),
    ("Q: ", "A: ", "\n\n", "\n\n\n"),
    ("", "", "\n\n", "\n\n\n"),
    ("", "", "\n", "\n"),
    ("Problem: ", "Answer: ", "\n", "\n\n"),
    ("Problem: ", "Answer: ", "\n\n", "\n\n\n"),
    ("Question:\n", "Answer:\n", "\n\n", "\n\n\n"),
    ("", "A: ", "\n\n", "\n\n\n"),
    ("Question: ", "Answer: ", "\n\n", "\n\n\n"),
)
# flan/v2/tasks.py draws the template-mix separator once per task from these three.
MIX_SEPARATORS = ("\n", "\n\n", "\n\n\n")
FEW_SHOT_MAX_TOKENS = 1920  # flan/v2/constants.py FEW_SHOT_MAX_LEN


# Tokens cover at most `max_piece_chars` characters of the normalized text each, and
# normalization shrinks non-whitespace text at most this much (NFKC composes at most 3 code
# points into 1, e.g. Hangul jamo); whitespace is not counted (T5's normalizer squeezes runs).
SHRINK_BOUND = 4
_WORDS = re.compile(r"\S+")


class TokenCounter:
    """`len(vocabulary.encode(text))`, without encoding text that is certainly too long.

    A text whose first characters already hold more than `cap` tokens is not encoded: the
    counter returns `cap + 1` after reading only as much of it as the bound needs, so pruning a
    600 KB exemplar costs what a `cap`-token one costs (the bound: every token covers at most
    `max_piece_chars` characters, the longest piece of a sentencepiece vocabulary; for a
    vocabulary without pieces there is no bound and every text is encoded).

        TokenCounter(vocab, cap=128)("word " * 100_000) -> 129, reading ~4 * 129 * 16 characters
    """

    def __init__(self, vocabulary: Any, cap: int | None = None) -> None:
        self.vocabulary = vocabulary
        self.cap = cap
        self._max_piece_chars: int | None = -1

    @property
    def max_piece_chars(self) -> int | None:
        if self._max_piece_chars == -1:
            sp = getattr(self.vocabulary, "tokenizer", None)
            size = getattr(sp, "get_piece_size", None)
            self._max_piece_chars = (max(len(sp.id_to_piece(i)) for i in range(size()))
                                     if size is not None else None)
        return self._max_piece_chars

    def chars_for(self, text: str, tokens: int) -> int | None:
        """A prefix length of `text` that certainly holds more than `tokens` tokens, or None
        when `text` may not (or the vocabulary has no bound). Reads at most that prefix."""
        if self.max_piece_chars is None:
            return None
        need = SHRINK_BOUND * (tokens + 1) * self.max_piece_chars  # non-whitespace characters
        if len(text) <= need:
            return None
        seen = 0
        for word in _WORDS.finditer(text):
            seen += word.end() - word.start()
            if seen >= need:
                return word.end()
        return None

    def __call__(self, text: str) -> int:
        if self.cap is not None and self.chars_for(text, self.cap) is not None:
            return self.cap + 1
        return len(self.vocabulary.encode(text))


def fewshot_templates(
    spec: DatasetSpec, templates: Sequence[Template] | None = None
) -> tuple[FewShotTemplate, ...]:
    """The dataset's few-shot templates: its own, or `templates` framed by FEWSHOT_FORMATS.

    Derived template i keeps zero-shot template i's text and `inverted` flag and is left out of
    the template mix when inverted (flan/v2 leaves out most generation-style patterns).
    `templates` (e.g. CoT templates) always derives.
    """
    if templates is None and spec.fewshot_templates:
        return tuple(spec.fewshot_templates)
    templates = spec.templates if templates is None else templates
    out = []
    for i, t in enumerate(templates):
        ip, tp, delim, sep = FEWSHOT_FORMATS[i % len(FEWSHOT_FORMATS)]
        out.append(FewShotTemplate(t.inputs, t.targets, ip, tp, delim, sep,
                                   in_template_mix=not t.inverted, inverted=t.inverted))
    return tuple(out)


def rstrip_spaces(text: str) -> str:
    """Trailing spaces only (newlines stay), as flan/v2's remove_trailing_spaces_escape_newlines."""
    return text.rstrip(" ")


def exemplar_block(t: FewShotTemplate, inputs: str, targets: str, separator: str | None = None) -> str:
    """One exemplar: prefix + inputs + delimiter + targets prefix + targets + separator."""
    sep = t.example_separator if separator is None else separator
    return t.inputs_prefix + inputs + t.x_y_delimiter + t.targets_prefix + targets + sep


def prompt_block(t: FewShotTemplate, inputs: str, *, strip_targets_prefix: bool) -> str:
    """The example's own part; the slot setting rstrips the targets prefix (seqio does)."""
    tp = t.targets_prefix.rstrip() if strip_targets_prefix else t.targets_prefix
    return rstrip_spaces(t.inputs_prefix + inputs + t.x_y_delimiter + tp)


def prune(blocks: Sequence[str], prompt: str, max_tokens: int | None,
          count: Callable[[str], int], suffix: str = "") -> list[str]:
    """The longest prefix of `blocks` whose joint text with the prompt (and `suffix`, text the
    caller appends after the prompt) fits in `max_tokens` tokens: exemplars go last first.

        ["aaaa", "bb", "c"], prompt "dd", max_tokens 8, count=len -> ["aaaa", "bb"] (4+2+2 = 8)
        the same with suffix "\\n"                               -> ["aaaa"]

    The parts' counts pick a first candidate; the joint text is then counted and blocks are
    dropped from the end until it fits.
    """
    if max_tokens is None:
        return list(blocks)
    budget = max_tokens - count(prompt + suffix)
    kept, used = [], 0
    for b in blocks:
        used += count(b)
        if used > budget:
            break
        kept.append(b)
    while kept and count("".join(kept) + prompt + suffix) > max_tokens:
        kept.pop()
    return kept


def build_slot(t: FewShotTemplate, shots: Sequence[tuple[str, str]], inputs: str, *,
               max_tokens: int | None = None, count: Callable[[str], int] = len,
               suffix: str = "") -> tuple[str, int]:
    """Slot setting: (prompt text, exemplars kept); every exemplar in template `t`."""
    prompt = prompt_block(t, inputs, strip_targets_prefix=True)
    kept = prune([exemplar_block(t, i, o) for i, o in shots], prompt, max_tokens, count, suffix)
    return "".join(kept) + prompt, len(kept)


def build_mix(example_template: FewShotTemplate,
              shots: Sequence[tuple[FewShotTemplate, str, str]], inputs: str, separator: str, *,
              max_tokens: int | None = None, count: Callable[[str], int] = len,
              suffix: str = "") -> tuple[str, int]:
    """Mix setting: each exemplar in its own template, one `separator` for all."""
    blocks = [exemplar_block(t, i, o, separator) for t, i, o in shots]
    prompt = prompt_block(example_template, inputs, strip_targets_prefix=False)
    kept = prune(blocks, prompt, max_tokens, count, suffix)
    return "".join(kept) + prompt, len(kept)


def build_x(t: FewShotTemplate, shots: Sequence[tuple[FewShotTemplate, str, str]], inputs: str,
            targets: str, *, max_tokens: int | None = None, count: Callable[[str], int] = len,
            suffix: str = "") -> tuple[str, str, int]:
    """x-shot setting: (prompt, stripped targets, kept); only exemplars in template `t` count."""
    same = [exemplar_block(t, i, o) for et, i, o in shots if et == t]
    prompt = prompt_block(t, inputs, strip_targets_prefix=False)
    kept = prune(same, prompt, max_tokens, count, suffix)
    return "".join(kept) + prompt, (targets + t.example_separator).strip(), len(kept)
