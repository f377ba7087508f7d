"""flan-mini cluster "mini_cipher": letter-shift codes and a tiny made-up language.

    mini_shift_letters:   {"word": "cat", "answer": "dbu"}        (each letter one step on, z -> a)
    mini_unshift_letters: {"word": "dbu", "answer": "cat"}        (each letter one step back)
    mini_translate:       {"phrase": "big cat", "answer": "gron miro"}

The made-up language ("Velian") is a word-for-word code: adjective then noun, both looked up
in VELIAN below, so the task is learnable by memorising 24 word pairs.
"""
from __future__ import annotations

import random
import string

from flan_jax.data.templates.flan_mini._source import mini_dataset
from flan_jax.data.templates.flan_mini.words import ANIMALS, SHORT_WORDS
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template

CLUSTER = "mini_cipher"
_LOWER = string.ascii_lowercase
_FORWARD = str.maketrans(_LOWER, _LOWER[1:] + _LOWER[0])
_BACKWARD = str.maketrans(_LOWER[1:] + _LOWER[0], _LOWER)
SHIFT_WORDS: tuple[str, ...] = tuple(w for w in SHORT_WORDS + ANIMALS if len(w) <= 5)

VELIAN_ADJECTIVES: dict[str, str] = {
    "big": "gron", "small": "pit", "red": "fasa", "blue": "lumo", "old": "varek", "new": "sil",
    "happy": "tovi", "quiet": "mura", "fast": "zeki", "cold": "brin", "warm": "halo",
    "green": "nesh",
}
VELIAN_NOUNS: dict[str, str] = {
    "cat": "miro", "dog": "tavu", "bird": "peko", "fish": "sulan", "house": "domar",
    "tree": "kelo", "river": "ushi", "sun": "rala", "moon": "nimu", "boat": "fenna",
    "horse": "kasto", "book": "libo",
}
VELIAN: dict[str, str] = {**VELIAN_ADJECTIVES, **VELIAN_NOUNS}


def shift_forward(word: str) -> str:
    return word.translate(_FORWARD)


def generate_shift(seed: int, n: int) -> list[Fields]:
    rng = random.Random(seed)
    words = [rng.choice(SHIFT_WORDS) for _ in range(n)]
    return [{"word": w, "answer": shift_forward(w)} for w in words]


def generate_unshift(seed: int, n: int) -> list[Fields]:
    """The coded word is shown; the answer is the plain word (so answers are real words)."""
    rng = random.Random(seed)
    words = [rng.choice(SHIFT_WORDS) for _ in range(n)]
    return [{"word": shift_forward(w), "answer": w} for w in words]


def generate_translate(seed: int, n: int) -> list[Fields]:
    rng = random.Random(seed)
    adjectives, nouns = sorted(VELIAN_ADJECTIVES), sorted(VELIAN_NOUNS)
    rows = []
    for _ in range(n):
        adj, noun = rng.choice(adjectives), rng.choice(nouns)
        rows.append({
            "phrase": f"{adj} {noun}",
            "answer": f"{VELIAN_ADJECTIVES[adj]} {VELIAN_NOUNS[noun]}",
        })
    return rows


SHIFT_TEMPLATES = (
    Template("Encode \"{word}\" by moving each letter one place forward in the alphabet.",
             "{answer}"),
    Template("Shift every letter of {word} by one (a becomes b, z becomes a).", "{answer}"),
    Template("plain: {word}\nshifted by 1:", "{answer}"),
    Template("Replace each letter in {word} with the letter after it.", "{answer}"),
    Template("Apply a +1 letter code to the word {word}.", "{answer}"),
    Template("Write {word} in the secret code where every letter moves up by one.", "{answer}"),
    Template("Caesar shift of 1 on \"{word}\":", "{answer}"),
    Template("{word} -> next letters ->", "{answer}"),
    Template("Turn each letter of \"{word}\" into the next one in the alphabet.", "{answer}"),
    Template("Scramble {word} with the shift-by-one cipher.", "{answer}"),
)

UNSHIFT_TEMPLATES = (
    Template("Decode \"{word}\" by moving each letter one place back in the alphabet.",
             "{answer}"),
    Template("Shift every letter of {word} back by one (b becomes a, a becomes z).",
             "{answer}"),
    Template("coded: {word}\ndecoded:", "{answer}"),
    Template("Replace each letter in {word} with the letter before it.", "{answer}"),
    Template("Undo a +1 letter code on the word {word}.", "{answer}"),
    Template("The secret word {word} had each letter moved up by one. What was the word?",
             "{answer}"),
    Template("Reverse a Caesar shift of 1 on \"{word}\":", "{answer}"),
    Template("{word} -> previous letters ->", "{answer}"),
    Template("Turn each letter of \"{word}\" into the one before it in the alphabet.",
             "{answer}"),
    Template("Crack the shift-by-one cipher: {word}", "{answer}"),
)

TRANSLATE_TEMPLATES = (
    Template("Translate \"{phrase}\" into Velian.", "{answer}"),
    Template("How do you say {phrase} in Velian?", "{answer}"),
    Template("English: {phrase}\nVelian:", "{answer}"),
    Template("Write the Velian words for: {phrase}", "{answer}"),
    Template("Put this English phrase into Velian, word by word: {phrase}", "{answer}"),
    Template("In the Velian language, what is \"{phrase}\"?", "{answer}"),
    Template("{phrase} (English) ->", "{answer}"),
    Template("Give the Velian translation of {phrase}.", "{answer}"),
    Template("A traveller wants to say \"{phrase}\" in Velian. What should they say?",
             "{answer}"),
    Template("Render in Velian: {phrase}", "{answer}"),
)

DATASETS: tuple[DatasetSpec, ...] = (
    mini_dataset("mini_shift_letters", CLUSTER, generate_shift, ("word", "answer"),
                 SHIFT_TEMPLATES, "a word with each letter moved one step forward",
                 metric="exact_match"),
    mini_dataset("mini_unshift_letters", CLUSTER, generate_unshift, ("word", "answer"),
                 UNSHIFT_TEMPLATES, "a shifted word decoded one step back",
                 metric="exact_match"),
    mini_dataset("mini_translate", CLUSTER, generate_translate, ("phrase", "answer"),
                 TRANSLATE_TEMPLATES, "adjective + noun into a 24-word made-up language",
                 metric="exact_match"),
)
