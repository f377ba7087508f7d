"""Training examples that contain an evaluation item: copies of any length and count, and
13-gram overlaps of long items.

Both checks compare *words*: lower-cased, punctuation removed (`words`), so changes
of whitespace, case and punctuation do not hide a copy. Template text is told apart from an
item's own text on the evaluation side: a word 3-gram found in at least
`max(2, TEMPLATE_FRACTION x n)` of the n examples of one evaluation task, and a word found in
`max(2, WORD_FRACTION x n)` of them, is that task's template (instructions, labels, an options
block); the other words are the item's content. (Template text recurs
in a task's examples, an item's words do not; counting per task keeps an item rendered by ten
evaluation tasks -- ten templates -- content.) Training examples are treated the same way per
training task, for the short-item rule below.

1. copies. An evaluation item with at least `MIN_COPY_WORDS` content words is copied into a
   training example when each run of its content words appears in the training example, in
   order (so a copy wrapped in another template, or with the evaluation template kept, is
   found). A shorter item counts only as an exact copy: a training example whose content words,
   or whose whole inputs, equal the item's (short phrases recur in unrelated text). How many
   training examples hold the copy does not matter.
2. overlaps. A word 13-gram (GPT-3's contamination analysis, Brown et al. 2020, Appendix C)
   shared by a training and an evaluation example, unless it is template text: all its words
   are template words of the evaluation task, or -- for an evaluation task of one example, whose
   template cannot be told from its item -- it occurs in more than `max_ngram_examples` training
   examples. A training-side count never hides an item's own text: an item copied into eleven
   training examples is still an overlap (and a copy).

Worked example (one evaluation task, two examples):

    eval 0: "Answer the question: who wrote the book dune?"   eval 1: "Answer the question: what is two plus two?"
    template 3-grams (in both): "answer the question"; content of eval 0: "who wrote the book dune" (5 words)
    train:  "Q: WHO wrote the book, Dune?  A: Frank Herbert"  -> a copy of eval 0 (its one content run is there)
    train:  "who wrote the book"                              -> not a copy (4 of the 5 words)
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

CONTAMINATION_N = 13
MAX_NGRAM_EXAMPLES = 10
MIN_COPY_WORDS = 5  # content words an item needs to be searched for inside longer examples
TEMPLATE_FRACTION = 0.05  # of a task's examples: a 3-gram this common in a task is its template
WORD_FRACTION = 0.5  # of a task's examples: a word this common in a task is template text
TEMPLATE_N = 3
ANCHOR_N = 5  # copies are found from one rare 5-word anchor per item, then checked whole


_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-cased words without punctuation: "It's 5 P.M.!" -> ["it", "s", "5", "p", "m"]
    (the unit of every audit comparison; findings.py re-exports it)."""
    return _WORD.findall(text.lower())


_words = words


def _grams(tokens: Sequence[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def template_mask(texts: Sequence[list[str]]) -> list[list[bool]]:
    """Per text (one task's examples, as words), per word: whether it is template text: covered
    by a 3-gram found in at least max(2, TEMPLATE_FRACTION x n) of the n texts, or a word found
    in at least max(2, WORD_FRACTION x n) of them (a one- or two-word label between two parts
    of an item, such as "hypothesis", is in no frequent 3-gram).

        [["say", "it", "now", "red"], ["say", "it", "now", "blue"]] -> [[T, T, T, F], [T, T, T, F]]
    """
    counts = Counter(g for t in texts for g in set(_grams(t, TEMPLATE_N)))
    word_counts = Counter(w for t in texts for w in set(t))
    bound = max(2, math.ceil(TEMPLATE_FRACTION * len(texts)))
    word_bound = max(2, math.ceil(WORD_FRACTION * len(texts)))
    out = []
    for t in texts:
        mask = [word_counts[w] >= word_bound for w in t]
        for i, g in enumerate(_grams(t, TEMPLATE_N)):
            if counts[g] >= bound:
                mask[i:i + TEMPLATE_N] = [True] * TEMPLATE_N
        out.append(mask)
    return out


def _by_task(examples: Sequence[Any]) -> tuple[list[list[str]], list[list[bool]], dict[str, int]]:
    """(words of each example's inputs, template masks, examples per task)."""
    texts = [_words(ex.inputs) for ex in examples]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        groups[ex.task].append(i)
    masks: list[list[bool]] = [[] for _ in examples]
    for idx in groups.values():
        for i, m in zip(idx, template_mask([texts[i] for i in idx])):
            masks[i] = m
    return texts, masks, {t: len(idx) for t, idx in groups.items()}


def _runs(tokens: Sequence[str], mask: Sequence[bool]) -> list[tuple[str, ...]]:
    """Maximal runs of non-template words."""
    runs, cur = [], []
    for w, templ in zip(tokens, mask):
        if templ:
            if cur:
                runs.append(tuple(cur))
            cur = []
        else:
            cur.append(w)
    return runs + ([tuple(cur)] if cur else [])


def _find(tokens: Sequence[str], piece: Sequence[str], start: int) -> int:
    """Index of the first occurrence of `piece` in `tokens` at or after `start`, else -1."""
    n = len(piece)
    first = piece[0]
    for i in range(start, len(tokens) - n + 1):
        if tokens[i] == first and tuple(tokens[i:i + n]) == tuple(piece):
            return i
    return -1


def _holds(tokens: Sequence[str], runs: Sequence[tuple[str, ...]]) -> bool:
    pos = 0
    for piece in runs:
        at = _find(tokens, piece, pos)
        if at < 0:
            return False
        pos = at + len(piece)
    return True


def copies(train: Sequence[Any], evaluation: Sequence[Any]) -> set[tuple[int, int]]:
    """(training index, evaluation index) pairs where the training example holds a copy of the
    evaluation item (rule 1 of the module docstring)."""
    ev_words, ev_masks, _ = _by_task(evaluation)
    ev_runs = [_runs(w, m) or [tuple(w)] for w, m in zip(ev_words, ev_masks)]
    # anchors: per long item, its rarest 5-gram (or its longest run, when every run is shorter)
    gram_counts = Counter(g for runs in ev_runs for r in runs for g in set(_grams(r, ANCHOR_N)))
    anchors: dict[tuple[str, ...], list[int]] = defaultdict(list)
    exact: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for j, runs in enumerate(ev_runs):
        size = sum(len(r) for r in runs)
        if size == 0:
            continue
        if size < MIN_COPY_WORDS:
            exact[tuple(w for r in runs for w in r)].append(j)
            exact[tuple(ev_words[j])].append(j)
            continue
        grams = [g for r in runs for g in _grams(r, ANCHOR_N)]
        anchors[min(grams, key=lambda g: gram_counts[g]) if grams else max(runs, key=len)].append(j)
    lengths = sorted({len(a) for a in anchors})
    found: set[tuple[int, int]] = set()
    tr_words, tr_masks, _ = _by_task(train)
    for i, ex in enumerate(train):
        full = _words(ex.inputs + "\n" + ex.targets)
        for key in {tuple(tr_words[i]), tuple(w for r in _runs(tr_words[i], tr_masks[i]) for w in r)}:
            found |= {(i, j) for j in exact.get(key, ())}
        for n in lengths:
            for g in set(_grams(full, n)):
                for j in anchors.get(g, ()):
                    if _holds(full, ev_runs[j]):
                        found.add((i, j))
    return found


def overlaps(train: Sequence[Any], evaluation: Sequence[Any], n: int = CONTAMINATION_N,
             max_ngram_examples: int = MAX_NGRAM_EXAMPLES) -> set[tuple[int, int]]:
    """(training index, evaluation index) pairs sharing a counted word n-gram (rule 2)."""
    owners: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, ex in enumerate(train):
        for g in set(_grams(_words(ex.inputs + "\n" + ex.targets), n)):
            owners[g].append(i)
    ev_words, ev_masks, sizes = _by_task(evaluation)
    found: set[tuple[int, int]] = set()
    for j, ev in enumerate(evaluation):
        tokens = _words(ev.inputs + "\n" + ev.targets)
        # template words are known for the inputs (the masks); the targets are content
        mask = ev_masks[j] + [False] * (len(tokens) - len(ev_masks[j]))
        for k, g in enumerate(_grams(tokens, n)):
            found_in = owners.get(g, ())
            if not found_in or all(mask[k:k + n]):
                continue
            if sizes[ev.task] < 2 and len(found_in) > max_ngram_examples:
                continue
            found |= {(i, j) for i in found_in}
    return found


def contamination(train: Sequence[Any], evaluation: Sequence[Any], n: int = CONTAMINATION_N,
                  max_ngram_examples: int = MAX_NGRAM_EXAMPLES) -> list[dict[str, Any]]:
    """Per (training task, evaluation task): the (training id, evaluation id) pairs that copies
    or overlaps found, sorted: [{"train_task", "eval_task", "count", "pairs"}]."""
    pairs = copies(train, evaluation) | overlaps(train, evaluation, n, max_ngram_examples)
    hits: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for i, j in pairs:
        hits[(train[i].task, evaluation[j].task)].add((train[i].id, evaluation[j].id))
    return [{"train_task": t, "eval_task": e, "count": len(p), "pairs": sorted(p)}
            for (t, e), p in sorted(hits.items())]
