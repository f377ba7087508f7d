"""flan-mini cluster "mini_comparison": pick one of two shown values (the held-out cluster).

Each example carries its own two options (`options_field="choices"`), in the order shown:
    mini_larger_number:  {"a": "42", "b": "17", "choices": ["42", "17"], "answer": "42"}
    mini_smaller_number: {"a": "42", "b": "17", "choices": ["42", "17"], "answer": "17"}
    mini_longer_word:    {"a": "cup", "b": "garden", "choices": ["cup", "garden"],
                          "answer": "garden"}
The answer is first or second with equal probability (a coin orders the pair).
"""
from __future__ import annotations

import random

from flan_jax.data.templates.flan_mini._source import mini_dataset
from flan_jax.data.templates.flan_mini.words import ANIMALS, FRUITS, SHORT_WORDS
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template

CLUSTER = "mini_comparison"
FIELDS: tuple[str, ...] = ("a", "b", "choices", "answer")
WORDS: tuple[str, ...] = SHORT_WORDS + FRUITS + ANIMALS


def _pair_row(a: str, b: str, answer: str) -> Fields:
    return {"a": a, "b": b, "choices": [a, b], "answer": answer}


def _number_pairs(seed: int, n: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    pairs = []
    while len(pairs) < n:
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        if a != b:
            pairs.append((a, b))
    return pairs


def generate_larger(seed: int, n: int) -> list[Fields]:
    return [_pair_row(str(a), str(b), str(max(a, b))) for a, b in _number_pairs(seed, n)]


def generate_smaller(seed: int, n: int) -> list[Fields]:
    return [_pair_row(str(a), str(b), str(min(a, b))) for a, b in _number_pairs(seed, n)]


def generate_longer(seed: int, n: int) -> list[Fields]:
    """Two words of different lengths; the answer is the one with more letters."""
    rng = random.Random(seed)
    rows = []
    while len(rows) < n:
        a, b = rng.choice(WORDS), rng.choice(WORDS)
        if len(a) != len(b):
            rows.append(_pair_row(a, b, a if len(a) > len(b) else b))
    return rows


LARGER_TEMPLATES = (
    Template("Which is larger, {a} or {b}?{options_}", "{answer}"),
    Template("Pick the bigger number: {a}, {b}{options_}", "{answer}"),
    Template("first: {a}\nsecond: {b}\nlarger:{options_}", "{answer}"),
    Template("Of {a} and {b}, which number is greater?{options_}", "{answer}"),
    Template("Tell me the maximum of {a} and {b}.{options_}", "{answer}"),
    Template("Two jars hold {a} and {b} beans. How many beans are in the fuller jar?{options_}",
             "{answer}"),
    Template("Compare {a} with {b} and give the higher one.{options_}", "{answer}"),
    Template("{a} vs {b}: which wins if bigger is better?{options_}", "{answer}"),
    Template("Name the greater value among {a} and {b}.{options_}", "{answer}"),
    Template("max({a}, {b}) ={options_}", "{answer}"),
)

SMALLER_TEMPLATES = (
    Template("Which is smaller, {a} or {b}?{options_}", "{answer}"),
    Template("Pick the lower number: {a}, {b}{options_}", "{answer}"),
    Template("first: {a}\nsecond: {b}\nsmaller:{options_}", "{answer}"),
    Template("Of {a} and {b}, which number is less?{options_}", "{answer}"),
    Template("Tell me the minimum of {a} and {b}.{options_}", "{answer}"),
    Template("One shelf has {a} cups and another has {b}. How many cups are on the emptier "
             "shelf?{options_}", "{answer}"),
    Template("Compare {a} with {b} and give the lesser one.{options_}", "{answer}"),
    Template("{a} vs {b}: which wins if smaller is better?{options_}", "{answer}"),
    Template("Name the lower value among {a} and {b}.{options_}", "{answer}"),
    Template("min({a}, {b}) ={options_}", "{answer}"),
)

LONGER_TEMPLATES = (
    Template("Which word is longer, \"{a}\" or \"{b}\"?{options_}", "{answer}"),
    Template("Pick the word with more letters: {a}, {b}{options_}", "{answer}"),
    Template("first: {a}\nsecond: {b}\nlonger word:{options_}", "{answer}"),
    Template("Of {a} and {b}, which takes more letters to spell?{options_}", "{answer}"),
    Template("Count the letters in {a} and in {b}. Which word has more?{options_}", "{answer}"),
    Template("You must write either {a} or {b} by hand. Which one is more work?{options_}",
             "{answer}"),
    Template("Compare the lengths of \"{a}\" and \"{b}\" and give the longer word.{options_}",
             "{answer}"),
    Template("{a} vs {b}: which word is longer?{options_}", "{answer}"),
    Template("Name the longer of the two words {a} and {b}.{options_}", "{answer}"),
    Template("Longest word: {a}, {b}{options_}", "{answer}"),
)

DATASETS: tuple[DatasetSpec, ...] = (
    mini_dataset("mini_larger_number", CLUSTER, generate_larger, FIELDS, LARGER_TEMPLATES,
                 "the larger of two different numbers from 0 to 99", options_field="choices"),
    mini_dataset("mini_smaller_number", CLUSTER, generate_smaller, FIELDS, SMALLER_TEMPLATES,
                 "the smaller of two different numbers from 0 to 99", options_field="choices"),
    mini_dataset("mini_longer_word", CLUSTER, generate_longer, FIELDS, LONGER_TEMPLATES,
                 "the longer of two words of different lengths", options_field="choices"),
)
