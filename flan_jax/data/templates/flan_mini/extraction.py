"""flan-mini cluster "mini_extraction": copy one span (a name, a number, a place) out of a sentence.

All three datasets share the sentence generator; each asks for a different span:
    {"sentence": "At the park, Omar counted 12 shells.", "answer": "Omar"}    (mini_extract_name)
    {"sentence": "At the park, Omar counted 12 shells.", "answer": "12"}      (mini_extract_number)
    {"sentence": "At the park, Omar counted 12 shells.", "answer": "the park"} (mini_extract_place)
"""
from __future__ import annotations

import random

from flan_jax.data.templates.flan_mini._source import mini_dataset
from flan_jax.data.templates.flan_mini.words import ITEMS, NAMES, PLACES
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template

CLUSTER = "mini_extraction"

# Sentence frames; each mentions every slot exactly once, so each span's answer is unique.
FRAMES: tuple[str, ...] = (
    "{name} bought {number} {item} at {place}.",
    "At {place}, {name} counted {number} {item}.",
    "{name} left {number} {item} behind at {place} yesterday.",
    "On Monday {name} brought {number} {item} to {place}.",
    "There were {number} {item} waiting for {name} at {place}.",
    "{name} found {number} {item} near {place}.",
)


def _sentences(seed: int, n: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        slots = {
            "name": rng.choice(NAMES),
            "number": str(rng.randint(2, 99)),
            "item": rng.choice(ITEMS),
            "place": rng.choice(PLACES),
        }
        out.append({"sentence": rng.choice(FRAMES).format(**slots), **slots})
    return out


def generate_name(seed: int, n: int) -> list[Fields]:
    return [{"sentence": s["sentence"], "answer": s["name"]} for s in _sentences(seed, n)]


def generate_number(seed: int, n: int) -> list[Fields]:
    return [{"sentence": s["sentence"], "answer": s["number"]} for s in _sentences(seed, n)]


def generate_place(seed: int, n: int) -> list[Fields]:
    return [{"sentence": s["sentence"], "answer": s["place"]} for s in _sentences(seed, n)]


NAME_TEMPLATES = (
    Template("{sentence}\nWho is the person in this sentence?", "{answer}"),
    Template("Find the name in: {sentence}", "{answer}"),
    Template("sentence: {sentence}\nname:", "{answer}"),
    Template("Which person is mentioned here? {sentence}", "{answer}"),
    Template("Read the sentence and write only the person's name.\n{sentence}", "{answer}"),
    Template("\"{sentence}\" Who is this about?", "{answer}"),
    Template("Pull out the first name from this line: {sentence}", "{answer}"),
    Template("{sentence}\nName:", "{answer}"),
    Template("Who did something in the sentence \"{sentence}\"?", "{answer}"),
    Template("Copy the name of the person from the text below.\n{sentence}", "{answer}"),
)

NUMBER_TEMPLATES = (
    Template("{sentence}\nWhat number appears in this sentence?", "{answer}"),
    Template("Find the number in: {sentence}", "{answer}"),
    Template("sentence: {sentence}\nnumber:", "{answer}"),
    Template("How many things are mentioned here? {sentence}", "{answer}"),
    Template("Read the sentence and write only the number.\n{sentence}", "{answer}"),
    Template("\"{sentence}\" Which quantity is given?", "{answer}"),
    Template("Pull out the count from this line: {sentence}", "{answer}"),
    Template("{sentence}\nNumber:", "{answer}"),
    Template("What is the amount in the sentence \"{sentence}\"?", "{answer}"),
    Template("Copy the digits from the text below.\n{sentence}", "{answer}"),
)

PLACE_TEMPLATES = (
    Template("{sentence}\nWhere does this happen?", "{answer}"),
    Template("Find the place in: {sentence}", "{answer}"),
    Template("sentence: {sentence}\nplace:", "{answer}"),
    Template("Which location is mentioned here? {sentence}", "{answer}"),
    Template("Read the sentence and write only the place.\n{sentence}", "{answer}"),
    Template("\"{sentence}\" At what place?", "{answer}"),
    Template("Pull out the location from this line: {sentence}", "{answer}"),
    Template("{sentence}\nPlace:", "{answer}"),
    Template("Where is the scene of the sentence \"{sentence}\"?", "{answer}"),
    Template("Copy the name of the place from the text below.\n{sentence}", "{answer}"),
)

DATASETS: tuple[DatasetSpec, ...] = (
    mini_dataset("mini_extract_name", CLUSTER, generate_name, ("sentence", "answer"),
                 NAME_TEMPLATES, "the person's name in a template sentence",
                 metric="exact_match"),
    mini_dataset("mini_extract_number", CLUSTER, generate_number, ("sentence", "answer"),
                 NUMBER_TEMPLATES, "the number in a template sentence", metric="exact_match"),
    mini_dataset("mini_extract_place", CLUSTER, generate_place, ("sentence", "answer"),
                 PLACE_TEMPLATES, "the place in a template sentence (as written, lowercase)",
                 metric="exact_match"),
)
