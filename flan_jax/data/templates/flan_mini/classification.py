"""flan-mini cluster "mini_classification": rule-based labels from a fixed, small option set.

    mini_parity:          {"number": "418", "answer": "even"}      options ("even", "odd")
    mini_fruit_or_animal: {"word": "mango", "answer": "fruit"}     options ("fruit", "animal")
    mini_vowel_start:     {"word": "otter", "answer": "yes"}       options ("yes", "no")
"""
from __future__ import annotations

import random

from flan_jax.data.templates.flan_mini._source import mini_dataset
from flan_jax.data.templates.flan_mini.words import ANIMALS, FRUITS, SHORT_WORDS
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template

CLUSTER = "mini_classification"
PARITY_OPTIONS: tuple[str, ...] = ("even", "odd")
KIND_OPTIONS: tuple[str, ...] = ("fruit", "animal")
YES_NO: tuple[str, ...] = ("yes", "no")
VOWELS = "aeiou"


def generate_parity(seed: int, n: int) -> list[Fields]:
    rng = random.Random(seed)
    numbers = [rng.randint(0, 999) for _ in range(n)]
    return [{"number": str(x), "answer": "even" if x % 2 == 0 else "odd"} for x in numbers]


def generate_fruit_or_animal(seed: int, n: int) -> list[Fields]:
    """Half fruits, half animals on average (a coin picks the list, then a word from it)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        kind = rng.choice(KIND_OPTIONS)
        word = rng.choice(FRUITS if kind == "fruit" else ANIMALS)
        rows.append({"word": word, "answer": kind})
    return rows


def generate_vowel_start(seed: int, n: int) -> list[Fields]:
    """Balanced: a coin picks vowel-initial or consonant-initial words."""
    pool = SHORT_WORDS + FRUITS + ANIMALS
    starts_vowel = [w for w in pool if w[0] in VOWELS]
    starts_consonant = [w for w in pool if w[0] not in VOWELS]
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        answer = rng.choice(YES_NO)
        word = rng.choice(starts_vowel if answer == "yes" else starts_consonant)
        rows.append({"word": word, "answer": answer})
    return rows


PARITY_TEMPLATES = (
    Template("Is {number} even or odd?{options_}", "{answer}"),
    Template("Classify the number {number} by parity.{options_}", "{answer}"),
    Template("number: {number}\nparity:{options_}", "{answer}"),
    Template("Can {number} be split into two equal whole halves? Say even or odd.{options_}",
             "{answer}"),
    Template("Tell me whether {number} is an even number or an odd one.{options_}", "{answer}"),
    Template("{number} is{options_}", "{answer}"),
    Template("Decide if {number} is divisible by 2 (even) or not (odd).{options_}", "{answer}"),
    Template("What kind of number is {number}, even or odd?{options_}", "{answer}"),
    Template("Look at the last digit of {number}. Is the number even or odd?{options_}",
             "{answer}"),
    Template("Parity check: {number}{options_}", "{answer}"),
)

KIND_TEMPLATES = (
    Template("Is \"{word}\" a fruit or an animal?{options_}", "{answer}"),
    Template("Classify the word \"{word}\".{options_}", "{answer}"),
    Template("word: {word}\ncategory:{options_}", "{answer}"),
    Template("Which group does {word} belong to: fruit or animal?{options_}", "{answer}"),
    Template("Does {word} grow on a plant or walk, swim or fly?{options_}", "{answer}"),
    Template("Sort \"{word}\" into the right category.{options_}", "{answer}"),
    Template("The word {word} names a kind of what?{options_}", "{answer}"),
    Template("Tell me if {word} names a fruit or an animal.{options_}", "{answer}"),
    Template("{word}: fruit or animal?{options_}", "{answer}"),
    Template("Pick the category that fits the word {word}.{options_}", "{answer}"),
)

VOWEL_TEMPLATES = (
    Template("Does the word \"{word}\" start with a vowel?{options_}", "{answer}"),
    Template("Is the first letter of {word} one of a, e, i, o, u?{options_}", "{answer}"),
    Template("word: {word}\nbegins with a vowel:{options_}", "{answer}"),
    Template("Look at {word}. Is its first letter a vowel?{options_}", "{answer}"),
    Template("Answer yes or no: {word} begins with a vowel.{options_}", "{answer}"),
    Template("Would you write \"an\" before {word} because it starts with a vowel?{options_}",
             "{answer}"),
    Template("Check whether \"{word}\" opens with a vowel.{options_}", "{answer}"),
    Template("{word}\nStarts with a, e, i, o or u?{options_}", "{answer}"),
    Template("Is {word} a word whose first letter is a vowel?{options_}", "{answer}"),
    Template("Vowel at the start of \"{word}\"?{options_}", "{answer}"),
)

DATASETS: tuple[DatasetSpec, ...] = (
    mini_dataset("mini_parity", CLUSTER, generate_parity, ("number", "answer"),
                 PARITY_TEMPLATES, "whether a number from 0 to 999 is even or odd",
                 options=PARITY_OPTIONS),
    mini_dataset("mini_fruit_or_animal", CLUSTER, generate_fruit_or_animal, ("word", "answer"),
                 KIND_TEMPLATES, "whether a word names a fruit or an animal (bundled lists)",
                 options=KIND_OPTIONS),
    mini_dataset("mini_vowel_start", CLUSTER, generate_vowel_start, ("word", "answer"),
                 VOWEL_TEMPLATES, "whether a word starts with a vowel", options=YES_NO),
)
