"""flan-mini: answers checked by independent re-computation, splits, determinism, lint, rendering."""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import subprocess
import sys

import pytest

from flan_jax.data.templates import flan_mini
from flan_jax.data.templates.flan_mini import words
from flan_jax.data.templates.lint import lint_catalogue, lint_dataset
from flan_jax.data.templates.render import example_options, render
from flan_jax.errors import FlanJaxError

SPECS = flan_mini.all_datasets()
BY_NAME = {s.name: s for s in SPECS}
N = 300


def _rows(spec, split="train", n=N):
    src = spec.sources[spec.name]
    return src.generate(src.split_seeds[split], n)


# --- independent answer checks (a different method from the generator's) ----------------------

def _shift(word: str, k: int) -> str:
    return "".join(chr((ord(c) - ord("a") + k) % 26 + ord("a")) for c in word)


_WORD_VALUES = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
_WORD_VALUES.update({w: 10 * (i + 2) for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split())})


def _words_to_int(text: str) -> int:
    return sum(_WORD_VALUES[part] for part in text.split("-"))


def _sorted_digits(text: str) -> str:
    counts = [0] * 10
    for d in text.split():
        counts[int(d)] += 1
    return " ".join(str(d) for d in range(10) for _ in range(counts[d]))


def _long_date(iso: str) -> str:
    d = datetime.date.fromisoformat(iso)  # also proves the date exists
    return f"{d.strftime('%B')} {d.day}, {d.year}"


CHECKS = {
    "mini_add": lambda r: str(eval(f"{r['a']} + {r['b']}")),
    "mini_subtract": lambda r: str(eval(f"{r['a']} - {r['b']}")),
    "mini_double": lambda r: str(eval(f"{r['a']} * 2")),
    "mini_reverse_word": lambda r: "".join(reversed(list(r["word"]))),
    "mini_uppercase": lambda r: "".join(chr(ord(c) - 32) for c in r["word"]),
    "mini_drop_letter": lambda r: "".join(c for c in r["word"] if c != r["letter"]),
    "mini_sort_digits": lambda r: _sorted_digits(r["digits"]),
    "mini_count_letter": lambda r: str(sum(1 for c in r["text"] if c == r["letter"])),
    "mini_count_words": lambda r: str(len(r["text"].split(" "))),
    "mini_parity": lambda r: "odd" if int(r["number"]) & 1 else "even",
    "mini_fruit_or_animal": lambda r: "fruit" if r["word"] in words.FRUITS else "animal",
    "mini_vowel_start": lambda r: "yes" if r["word"][0] in "aeiou" else "no",
    "mini_extract_name": lambda r: [n for n in words.NAMES
                                    if re.search(rf"\b{n}\b", r["sentence"])][0],
    "mini_extract_number": lambda r: re.findall(r"\d+", r["sentence"])[0],
    "mini_extract_place": lambda r: [p for p in words.PLACES if p in r["sentence"]][-1],
    "mini_shift_letters": lambda r: _shift(r["word"], 1),
    "mini_unshift_letters": lambda r: _shift(r["word"], 25),
    "mini_larger_number": lambda r: sorted(r["choices"], key=int)[-1],
    "mini_smaller_number": lambda r: sorted(r["choices"], key=int)[0],
    "mini_longer_word": lambda r: sorted(r["choices"], key=len)[-1],
    "mini_date_format": lambda r: _long_date(r["date"]),
    "mini_number_words": lambda r: r["answer"] if _words_to_int(r["answer"]) == int(r["number"])
    else "<words do not spell the number>",
    "mini_thousands": lambda r: "{:,}".format(int(r["number"])),
}

# The Velian word list as documented in docs/flan_mini.md (typed again here, not imported).
VELIAN_DOC = dict(pair.split("=") for pair in (
    "big=gron small=pit red=fasa blue=lumo old=varek new=sil happy=tovi quiet=mura fast=zeki "
    "cold=brin warm=halo green=nesh cat=miro dog=tavu bird=peko fish=sulan house=domar "
    "tree=kelo river=ushi sun=rala moon=nimu boat=fenna horse=kasto book=libo").split())
CHECKS["mini_translate"] = lambda r: " ".join(VELIAN_DOC[w] for w in r["phrase"].split())

# Hand-written expectations for the tasks whose rule is a lookup table.
VELIAN_BY_HAND = {"big cat": "gron miro", "small dog": "pit tavu", "blue river": "lumo ushi",
                  "warm sun": "halo rala"}
NUMBER_WORDS_BY_HAND = {"0": "zero", "13": "thirteen", "40": "forty", "42": "forty-two",
                        "99": "ninety-nine"}


def test_catalogue_shape():
    assert len(flan_mini.CLUSTERS) >= 8
    assert len(BY_NAME) == len(SPECS), "dataset names must be unique"
    assert {s.cluster for s in SPECS} == set(flan_mini.CLUSTERS)
    assert flan_mini.HELD_OUT_CLUSTER in flan_mini.CLUSTERS
    assert flan_mini.HELD_OUT_CLUSTER not in flan_mini.HELD_IN_CLUSTERS
    for cluster in flan_mini.CLUSTERS:
        specs = flan_mini.cluster_datasets(cluster)
        assert specs and all(s.cluster == cluster for s in specs)
    assert set(words.FRUITS).isdisjoint(words.ANIMALS)


def test_lint_clean():
    assert lint_catalogue(SPECS) == []
    for spec in SPECS:
        assert len(spec.templates) == 10
        assert spec.metric in ("accuracy", "exact_match")
        assert spec.has_options == (spec.metric == "accuracy"), spec.name


def test_unknown_cluster_is_a_flan_jax_error():
    with pytest.raises(FlanJaxError, match="mini_nope"):
        flan_mini.cluster_datasets("mini_nope")


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_answers_independently_correct(name):
    assert name in CHECKS, f"no independent check for {name}"
    spec = BY_NAME[name]
    for row in _rows(spec):
        assert set(row) == set(spec.fields)
        assert row[spec.answer_field] == CHECKS[name](row), row
        opts = example_options(spec, row)
        if opts is not None:
            assert row[spec.answer_field] in opts and len(set(opts)) == len(opts)


def test_lookup_tables_match_hand_written_examples():
    velian = {r["phrase"]: r["answer"] for r in _rows(BY_NAME["mini_translate"], n=2000)}
    numbers = {r["number"]: r["answer"] for r in _rows(BY_NAME["mini_number_words"], n=2000)}
    for table, by_hand in ((velian, VELIAN_BY_HAND), (numbers, NUMBER_WORDS_BY_HAND)):
        for key, answer in by_hand.items():
            assert table[key] == answer


def test_options_are_balanced_enough_for_rank_classification():
    for spec in SPECS:
        if not spec.has_options:
            continue
        answers = [r[spec.answer_field] for r in _rows(spec, n=1000)]
        top = max(answers.count(a) for a in set(answers))
        assert top < 0.7 * len(answers), (spec.name, top)
        if spec.options_field:  # the right answer is not always in the same position
            firsts = sum(r["choices"][0] == r["answer"] for r in _rows(spec, n=1000))
            assert 400 < firsts < 600, spec.name


def test_splits_have_distinct_seeds_and_rows():
    seeds = set()
    for spec in SPECS:
        src = spec.sources[spec.name]
        assert src.splits == ("train", "validation", "test")
        assert src.split_sizes["train"] >= 1000
        seeds.update(src.split_seeds.values())
        train = _rows(spec, "train", 200)
        val, test = _rows(spec, "validation", 200), _rows(spec, "test", 200)
        assert train != val and train != test and val != test, spec.name
        assert len(_rows(spec, "test", 7)) == 7
    assert len(seeds) == 3 * len(SPECS)


_DIGEST_SCRIPT = """
import hashlib, json
from flan_jax.data.templates import flan_mini
h = hashlib.sha256()
for spec in flan_mini.all_datasets():
    src = spec.sources[spec.name]
    for split, n in src.split_sizes.items():
        h.update(json.dumps(src.generate(src.split_seeds[split], n), sort_keys=True).encode())
print(h.hexdigest())
"""


@pytest.mark.slow
def test_deterministic_across_processes():
    digests = []
    for hash_seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT], env=env, check=True,
                             capture_output=True, text=True)
        digests.append(out.stdout.strip())
    assert digests[0] == digests[1]
    h = hashlib.sha256()  # and the same in this process
    for spec in SPECS:
        src = spec.sources[spec.name]
        for split, n in src.split_sizes.items():
            h.update(json.dumps(src.generate(src.split_seeds[split], n), sort_keys=True).encode())
    assert h.hexdigest() == digests[0]


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_every_template_renders_short(name):
    spec = BY_NAME[name]
    assert lint_dataset(spec) == []
    for row in _rows(spec, "validation", 50):
        for t in range(len(spec.templates)):
            for with_options in (True, False):
                inputs, targets = render(spec, t, row, with_options=with_options)
                assert 0 < len(inputs) < 200
                assert targets == row[spec.answer_field]
                assert ("OPTIONS:" in inputs) == (with_options and spec.has_options)
