"""flan-mini cluster "mini_string_edit": reverse, capitalize and drop letters of a word.

    mini_reverse_word: {"word": "lamp", "answer": "pmal"}
    mini_uppercase:    {"word": "lamp", "answer": "LAMP"}
    mini_drop_letter:  {"word": "garden", "letter": "d", "answer": "garen"}
"""
from __future__ import annotations

import random

from flan_jax.data.templates.flan_mini._source import mini_dataset
from flan_jax.data.templates.flan_mini.words import ANIMALS, FRUITS, SHORT_WORDS
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template

CLUSTER = "mini_string_edit"
WORDS: tuple[str, ...] = SHORT_WORDS + FRUITS + ANIMALS


def generate_reverse(seed: int, n: int) -> list[Fields]:
    rng = random.Random(seed)
    words = [rng.choice(WORDS) for _ in range(n)]
    return [{"word": w, "answer": w[::-1]} for w in words]


def generate_uppercase(seed: int, n: int) -> list[Fields]:
    rng = random.Random(seed)
    words = [rng.choice(WORDS) for _ in range(n)]
    return [{"word": w, "answer": w.upper()} for w in words]


def generate_drop_letter(seed: int, n: int) -> list[Fields]:
    """The letter is one that occurs in the word; every occurrence is removed."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        word = rng.choice(WORDS)
        letter = rng.choice(sorted(set(word)))
        rows.append({"word": word, "letter": letter, "answer": word.replace(letter, "")})
    return rows


REVERSE_TEMPLATES = (
    Template("Reverse the word \"{word}\".", "{answer}"),
    Template("Write {word} backwards.", "{answer}"),
    Template("Spell the word {word} from the last letter to the first.", "{answer}"),
    Template("word: {word}\nreversed:", "{answer}"),
    Template("What does \"{word}\" look like when read right to left?", "{answer}"),
    Template("Flip the order of the letters in {word}.", "{answer}"),
    Template("Turn this word around: {word}", "{answer}"),
    Template("Give the mirror spelling of \"{word}\".", "{answer}"),
    Template("{word} -> reverse ->", "{answer}"),
    Template("Read the letters of {word} in reverse order and write the result.", "{answer}"),
)

UPPERCASE_TEMPLATES = (
    Template("Write \"{word}\" in capital letters.", "{answer}"),
    Template("Convert {word} to uppercase.", "{answer}"),
    Template("word: {word}\nuppercase:", "{answer}"),
    Template("Shout this word: {word}", "{answer}"),
    Template("Make every letter of {word} a capital.", "{answer}"),
    Template("How is \"{word}\" written in all caps?", "{answer}"),
    Template("Rewrite {word} using only upper-case letters.", "{answer}"),
    Template("{word} -> CAPS ->", "{answer}"),
    Template("Change the word {word} so that all its letters are big.", "{answer}"),
    Template("Give the uppercase form of \"{word}\".", "{answer}"),
)

DROP_LETTER_TEMPLATES = (
    Template("Remove every \"{letter}\" from the word \"{word}\".", "{answer}"),
    Template("Delete the letter {letter} from {word}.", "{answer}"),
    Template("word: {word}\nwithout {letter}:", "{answer}"),
    Template("What is left of {word} after taking out all the {letter}s?", "{answer}"),
    Template("Erase each {letter} in \"{word}\" and write what remains.", "{answer}"),
    Template("Write {word} but skip the letter {letter}.", "{answer}"),
    Template("Strip the character '{letter}' out of {word}.", "{answer}"),
    Template("{word} minus the letter {letter} gives:", "{answer}"),
    Template("Spell \"{word}\" leaving out any {letter}.", "{answer}"),
    Template("Drop all copies of {letter} from this word: {word}", "{answer}"),
)

DATASETS: tuple[DatasetSpec, ...] = (
    mini_dataset("mini_reverse_word", CLUSTER, generate_reverse, ("word", "answer"),
                 REVERSE_TEMPLATES, "a word spelled backwards", metric="exact_match"),
    mini_dataset("mini_uppercase", CLUSTER, generate_uppercase, ("word", "answer"),
                 UPPERCASE_TEMPLATES, "a word in capital letters", metric="exact_match"),
    mini_dataset("mini_drop_letter", CLUSTER, generate_drop_letter,
                 ("word", "letter", "answer"), DROP_LETTER_TEMPLATES,
                 "a word with every copy of one of its letters removed", metric="exact_match"),
)
