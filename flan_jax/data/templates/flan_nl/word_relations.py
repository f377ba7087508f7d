"""flan-nl cluster "nl_word_relations": opposites, same-meaning words and kinds of things.

Each example carries four choices (`options_field="choices"`), shown in a random order:
    nl_antonym:  {"word": "hot", "choices": ["loud", "cold", "early", "thin"], "answer": "cold"}
    nl_synonym:  {"word": "big", "choices": ["large", "quick", "ill", "tidy"], "answer": "large"}
    nl_hypernym: {"word": "a tulip", "choices": ["a tool", "a flower", "a fish", "a vehicle"],
                  "answer": "a flower"}
Distractors are words of other pairs (or other categories), so exactly one choice fits. Answer
positions are balanced. Content key: the word and its set of choices.
"""
from __future__ import annotations

import random

from flan_jax.data.templates.flan_nl._source import choices_key, nl_dataset, pick_choices
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template

CLUSTER = "nl_word_relations"
FIELDS: tuple[str, ...] = ("word", "choices", "answer")

ANTONYMS = (("hot", "cold"), ("wet", "dry"), ("rich", "poor"), ("loud", "quiet"),
            ("hard", "soft"), ("strong", "weak"), ("thick", "thin"), ("clean", "dirty"),
            ("cheap", "expensive"), ("wide", "narrow"), ("deep", "shallow"), ("early", "late"),
            ("full", "empty"), ("buy", "sell"), ("push", "pull"), ("arrive", "leave"),
            ("win", "lose"), ("day", "night"), ("summer", "winter"), ("north", "south"),
            ("inside", "outside"), ("always", "never"), ("above", "below"), ("first", "last"),
            ("awake", "asleep"), ("alive", "dead"), ("heavy", "light"),
            ("safe", "dangerous"), ("remember", "forget"), ("laugh", "cry"), ("open", "closed"),
            ("tall", "short"), ("fast", "slow"), ("happy", "sad"), ("old", "young"))
SYNONYMS = (("big", "large"), ("small", "little"), ("quick", "fast"), ("start", "begin"),
            ("glad", "happy"), ("shut", "close"), ("finish", "end"), ("rich", "wealthy"),
            ("clever", "smart"), ("gift", "present"), ("sick", "ill"), ("buy", "purchase"),
            ("help", "assist"), ("correct", "right"), ("afraid", "scared"), ("simple", "easy"),
            ("hard", "difficult"), ("silent", "quiet"), ("shout", "yell"), ("speak", "talk"),
            ("jump", "leap"), ("tidy", "neat"), ("sofa", "couch"),
            ("stone", "rock"), ("mistake", "error"), ("answer", "reply"), ("street", "road"),
            ("angry", "cross"), ("tired", "sleepy"), ("choose", "pick"), ("wet", "damp"),
            ("shop", "store"))
CATEGORIES = {
    "a fruit": ("an apple", "a pear", "a plum", "a cherry", "a mango", "a peach", "a grape",
                "a lemon"),
    "a vegetable": ("a carrot", "a cabbage", "a potato", "an onion", "a leek", "a turnip",
                    "a lettuce", "a parsnip"),
    "a bird": ("a robin", "an eagle", "a sparrow", "an owl", "a parrot", "a swan", "a pigeon",
               "a crow"),
    "a fish": ("a salmon", "a trout", "a cod", "a tuna", "a herring", "a goldfish", "a carp",
               "a mackerel"),
    "a tool": ("a hammer", "a saw", "a screwdriver", "a wrench", "a drill", "a chisel",
               "a pair of pliers", "a spanner"),
    "a vehicle": ("a car", "a bus", "a lorry", "a bicycle", "a tram", "a motorbike", "a van",
                  "a tractor"),
    "a musical instrument": ("a violin", "a guitar", "a piano", "a trumpet", "a flute",
                             "a drum", "a cello", "a harp"),
    "a piece of furniture": ("a chair", "a table", "a sofa", "a wardrobe", "a bed", "a desk",
                             "a bookcase", "a stool"),
    "a flower": ("a rose", "a tulip", "a daisy", "a lily", "a sunflower", "a daffodil",
                 "an orchid", "a poppy"),
    "an insect": ("an ant", "a bee", "a beetle", "a wasp", "a butterfly", "a moth",
                  "a ladybird", "a grasshopper"),
}


def _pair_rows(rng: random.Random, pairs, draws: int) -> list[Fields]:
    """Both directions of every pair; distractors are words of the other pairs."""
    rows = []
    for _ in range(draws):
        for i, (a, b) in enumerate(pairs):
            others = [w for j, pair in enumerate(pairs) if j != i for w in pair
                      if w not in (a, b)]
            for word, answer in ((a, b), (b, a)):
                rows.append({"word": word, "choices": pick_choices(rng, answer, others, 4),
                             "answer": answer})
    rng.shuffle(rows)
    return rows


def antonym_candidates(rng: random.Random) -> list[Fields]:
    # A distractor must not also fit: no word is in two pairs, and pairs that could cross
    # ("hard"/"soft" next to "easy"/"difficult", "big" next to "huge") are left out.
    return _pair_rows(rng, ANTONYMS, 40)


def synonym_candidates(rng: random.Random) -> list[Fields]:
    return _pair_rows(rng, SYNONYMS, 40)


def hypernym_candidates(rng: random.Random) -> list[Fields]:
    rows = []
    for _ in range(40):
        for category in sorted(CATEGORIES):
            for word in CATEGORIES[category]:
                rows.append({"word": word, "choices": pick_choices(rng, category, CATEGORIES, 4),
                             "answer": category})
    rng.shuffle(rows)
    return rows


def _key(row: Fields) -> str:
    return choices_key(row["word"], row["choices"])


ANTONYM_TEMPLATES = (
    Template("What is the opposite of \"{word}\"?{options_}", "{answer}"),
    Template("Which word means the opposite of {word}?{options_}", "{answer}"),
    Template("Give an antonym of the word \"{word}\".{options_}", "{answer}"),
    Template("Question: What is the antonym of {word}?\nAnswer:{options_}", "{answer}"),
    Template("Pick the word that is opposite in meaning to \"{word}\".{options_}", "{answer}"),
    Template("Up is to down as {word} is to what?{options_}", "{answer}"),
    Template("Find the antonym.\nWord: {word}{options_}", "{answer}"),
    Template("Which of these words is the reverse of \"{word}\"?{options_}", "{answer}"),
    Template("If something is not {word}, it is often described as what?{options_}",
             "{answer}"),
    Template("Opposite of {word}:{options_}", "{answer}"),
)

SYNONYM_TEMPLATES = (
    Template("Which word means the same as \"{word}\"?{options_}", "{answer}"),
    Template("What is a synonym of {word}?{options_}", "{answer}"),
    Template("Give another word for \"{word}\".{options_}", "{answer}"),
    Template("Question: Which word has the same meaning as {word}?\nAnswer:{options_}",
             "{answer}"),
    Template("Pick the word closest in meaning to \"{word}\".{options_}", "{answer}"),
    Template("In a sentence, which of these words could replace \"{word}\" without changing "
             "the meaning?{options_}", "{answer}"),
    Template("Find the synonym.\nWord: {word}{options_}", "{answer}"),
    Template("Which of these words is similar to \"{word}\"?{options_}", "{answer}"),
    Template("A thesaurus lists one of these under \"{word}\". Which one?{options_}",
             "{answer}"),
    Template("Same meaning as {word}:{options_}", "{answer}"),
)

HYPERNYM_TEMPLATES = (
    Template("What kind of thing is {word}?{options_}", "{answer}"),
    Template("What is {word} a kind of?{options_}", "{answer}"),
    Template("Which category does {word} belong to?{options_}", "{answer}"),
    Template("Question: What is {word}?\nAnswer:{options_}", "{answer}"),
    Template("Complete the sentence: {word} is ...{options_}", "{answer}"),
    Template("Sort this word into the right group: {word}{options_}", "{answer}"),
    Template("Name the group that {word} is part of.{options_}", "{answer}"),
    Template("If you had to put {word} in one box, which label would the box have?{options_}",
             "{answer}"),
    Template("Word: {word}\nCategory:{options_}", "{answer}"),
    Template("Which word describes {word} in general?{options_}", "{answer}"),
)

DATASETS: tuple[DatasetSpec, ...] = (
    nl_dataset("nl_antonym", CLUSTER, antonym_candidates, _key, FIELDS, ANTONYM_TEMPLATES,
               "the opposite of a word", options_field="choices"),
    nl_dataset("nl_synonym", CLUSTER, synonym_candidates, _key, FIELDS, SYNONYM_TEMPLATES,
               "a word with the same meaning", options_field="choices"),
    nl_dataset("nl_hypernym", CLUSTER, hypernym_candidates, _key, FIELDS, HYPERNYM_TEMPLATES,
               "the category a thing belongs to", options_field="choices"),
)
