"""flan-mini cluster "mini_sort_count": sort a few digits, count letters, count words.

    mini_sort_digits: {"digits": "7 2 9 4", "answer": "2 4 7 9"}
    mini_count_letter: {"text": "abacd", "letter": "a", "answer": "2"}   options "0".."4"
    mini_count_words:  {"text": "red sun cup", "answer": "3"}            options "2".."6"
"""
from __future__ import annotations

import random

from flan_jax.data.templates.flan_mini._source import mini_dataset
from flan_jax.data.templates.flan_mini.words import COLORS, SHORT_WORDS
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template

CLUSTER = "mini_sort_count"
COUNT_LETTERS = "abcdef"
LETTER_COUNT_OPTIONS: tuple[str, ...] = ("0", "1", "2", "3", "4")
WORD_COUNT_OPTIONS: tuple[str, ...] = ("2", "3", "4", "5", "6")


def generate_sort_digits(seed: int, n: int) -> list[Fields]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        digits = [rng.randint(0, 9) for _ in range(rng.randint(3, 5))]
        rows.append({
            "digits": " ".join(map(str, digits)),
            "answer": " ".join(map(str, sorted(digits))),
        })
    return rows


def generate_count_letter(seed: int, n: int) -> list[Fields]:
    """A 5-8 letter string over a-f and a letter occurring 0-4 times in it (redrawn if more)."""
    rng = random.Random(seed)
    rows = []
    while len(rows) < n:
        text = "".join(rng.choice(COUNT_LETTERS) for _ in range(rng.randint(5, 8)))
        letter = rng.choice(COUNT_LETTERS)
        count = text.count(letter)
        if count <= 4:
            rows.append({"text": text, "letter": letter, "answer": str(count)})
    return rows


def generate_count_words(seed: int, n: int) -> list[Fields]:
    rng = random.Random(seed)
    pool = SHORT_WORDS + COLORS
    rows = []
    for _ in range(n):
        k = rng.randint(2, 6)
        rows.append({"text": " ".join(rng.choice(pool) for _ in range(k)), "answer": str(k)})
    return rows


SORT_TEMPLATES = (
    Template("Sort these digits from smallest to largest: {digits}", "{answer}"),
    Template("Put in increasing order: {digits}", "{answer}"),
    Template("digits: {digits}\nsorted:", "{answer}"),
    Template("Arrange the numbers {digits} in ascending order.", "{answer}"),
    Template("Order the following, lowest first: {digits}", "{answer}"),
    Template("Rewrite \"{digits}\" so the digits go up from left to right.", "{answer}"),
    Template("Sort: {digits}", "{answer}"),
    Template("Line up these digits from least to greatest.\n{digits}", "{answer}"),
    Template("What is {digits} after sorting in ascending order?", "{answer}"),
    Template("{digits} -> sorted ->", "{answer}"),
)

COUNT_LETTER_TEMPLATES = (
    Template("How many times does \"{letter}\" appear in \"{text}\"?{options_}", "{answer}"),
    Template("Count the letter {letter} in {text}.{options_}", "{answer}"),
    Template("text: {text}\nletter: {letter}\ncount:{options_}", "{answer}"),
    Template("In the string {text}, how often do you see {letter}?{options_}", "{answer}"),
    Template("Number of {letter}s in \"{text}\"?{options_}", "{answer}"),
    Template("Look at {text}. How many of its letters are {letter}?{options_}", "{answer}"),
    Template("Tell me the count of '{letter}' in '{text}'.{options_}", "{answer}"),
    Template("{text}\nHow many {letter}?{options_}", "{answer}"),
    Template("Find how many copies of {letter} the string {text} has.{options_}", "{answer}"),
    Template("Count occurrences: letter {letter}, string {text}{options_}", "{answer}"),
)

COUNT_WORDS_TEMPLATES = (
    Template("How many words are in this list: {text}?{options_}", "{answer}"),
    Template("Count the words: {text}{options_}", "{answer}"),
    Template("words: {text}\nnumber of words:{options_}", "{answer}"),
    Template("\"{text}\"\nHow many words is that?{options_}", "{answer}"),
    Template("Tell me how many words you see in \"{text}\".{options_}", "{answer}"),
    Template("What is the word count of {text}?{options_}", "{answer}"),
    Template("Here are some words: {text}. How many are there?{options_}", "{answer}"),
    Template("Count each word once, including repeats: {text}{options_}", "{answer}"),
    Template("{text}\nWord count:{options_}", "{answer}"),
    Template("How long, in words, is the phrase \"{text}\"?{options_}", "{answer}"),
)

DATASETS: tuple[DatasetSpec, ...] = (
    mini_dataset("mini_sort_digits", CLUSTER, generate_sort_digits, ("digits", "answer"),
                 SORT_TEMPLATES, "3 to 5 digits sorted in ascending order",
                 metric="exact_match"),
    mini_dataset("mini_count_letter", CLUSTER, generate_count_letter,
                 ("text", "letter", "answer"), COUNT_LETTER_TEMPLATES,
                 "how often a letter occurs in a short string", options=LETTER_COUNT_OPTIONS),
    mini_dataset("mini_count_words", CLUSTER, generate_count_words, ("text", "answer"),
                 COUNT_WORDS_TEMPLATES, "the number of words in a list of 2 to 6",
                 options=WORD_COUNT_OPTIONS),
)
