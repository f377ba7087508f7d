"""flan-nl cluster "nl_commonsense": everyday facts about sizes, colours and animals.

Each example carries its own choices (`options_field="choices"`), shown in a random order:
    nl_size_compare: {"a": "an ant", "b": "a house", "choices": ["an ant", "a house"],
                      "answer": "a house"}                       (which is bigger?)
    nl_colour:       {"thing": "a ripe banana", "choices": ["blue", "yellow", "red", "black"],
                      "answer": "yellow"}
    nl_animal_ability: {"ability": "fly", "choices": ["a cow", "an eagle", "a pig", "a dog"],
                        "answer": "an eagle"}                    (which of these can fly?)
Sizes are seven classes of 12 things from "tiny" to "enormous"; a pair is asked only when the classes are two
or more apart, so the answer is not a matter of opinion. Answer positions are balanced. Content
key: the question and its set of choices (a fact recurs across splits with other distractors).
"""
from __future__ import annotations

import random

from flan_jax.data.templates.flan_nl._source import choices_key, nl_dataset, pick_choices
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template

CLUSTER = "nl_commonsense"

SIZE_CLASSES = (
    ("an ant", "a bee", "a pea", "a coin", "a button", "a grain of rice", "a paper clip",
     "a ladybird", "a raisin", "a bead", "a flea", "a grape seed"),
    ("an apple", "an egg", "a spoon", "a pencil", "a mouse", "a teacup", "a lemon", "a sparrow", "a potato",
     "a toothbrush", "a banana", "a bar of soap"),
    ("a cat", "a football", "a laptop", "a rabbit", "a pillow", "a backpack", "a chicken",
     "a watermelon", "a microwave", "a fox", "a suitcase", "a car tyre"),
    ("a sofa", "a bicycle", "a fridge", "a door", "a sheep", "a wardrobe", "a deer",
     "a motorbike", "an armchair", "a kayak", "a bathtub", "a kangaroo"),
    ("a car", "a horse", "a cow", "a camel", "a tractor", "a van", "a rhinoceros",
     "a grand piano", "a bus", "a hippopotamus", "a giraffe", "a lorry"),
    ("a house", "a whale", "an aeroplane", "a ship", "a barn", "a train", "a church",
     "a lighthouse", "a castle", "a bridge", "a football stadium", "a skyscraper"),
    ("a mountain", "an island", "a city", "a country", "a forest", "an ocean", "a desert",
     "a continent", "a glacier", "a valley", "a lake", "a volcano"),
)

COLOURS = ("red", "yellow", "green", "blue", "white", "black", "orange", "brown", "grey",
           "purple")
COLOUR_OF = {
    "a ripe banana": "yellow", "fresh snow": "white", "coal": "black", "a ripe tomato": "red",
    "grass in spring": "green", "the sky on a clear day": "blue", "a carrot": "orange",
    "milk": "white", "a lemon": "yellow", "a crow": "black", "a ripe strawberry": "red",
    "a lime": "green", "a pumpkin": "orange", "an emerald": "green", "a sapphire": "blue",
    "a ruby": "red", "milk chocolate": "brown", "a polar bear": "white", "a frog": "green",
    "an orange": "orange", "an elephant": "grey", "a rain cloud": "grey", "a plum": "purple",
    "an aubergine": "purple", "the yolk of an egg": "yellow", "a fire engine": "red",
    "a cup of coffee": "brown", "a lavender flower": "purple", "a panther": "black",
    "a chestnut": "brown", "a dolphin": "grey", "a swan": "white", "a canary": "yellow",
    "a pine tree": "green", "a blueberry": "blue", "a sunflower": "yellow",
}

# ability -> (animals that can, animals that cannot)
ABILITIES = {
    "fly": (("an eagle", "a sparrow", "an owl", "a bat", "a pigeon", "a parrot", "a seagull",
             "a butterfly"),
            ("a dog", "a cow", "a pig", "an elephant", "a snake", "a horse", "a tortoise",
             "a sheep", "a rabbit", "a giraffe")),
    "breathe under water": (("a shark", "a salmon", "a goldfish", "a trout", "a tuna", "a cod",
                             "a carp"),
                            ("a dog", "a cat", "a horse", "a chicken", "a lion", "a giraffe",
                             "a goat", "a camel", "a rabbit", "a sheep")),
    "climb trees": (("a monkey", "a squirrel", "a koala", "a sloth", "a cat", "a leopard"),
                    ("an elephant", "a cow", "a hippopotamus", "a whale", "a horse",
                     "a goldfish", "a sheep", "a camel", "a pig")),
    "lay eggs": (("a chicken", "a duck", "a turtle", "a crocodile", "an ostrich", "a frog",
                  "a goose"),
                 ("a cow", "a dog", "a horse", "a cat", "a whale", "a rabbit", "an elephant",
                  "a sheep", "a goat", "a pig")),
    "jump very high": (("a kangaroo", "a flea", "a grasshopper", "a frog", "a deer"),
                       ("an elephant", "a tortoise", "a snail", "a hippopotamus", "a slug",
                        "a whale", "a worm", "a jellyfish")),
}


def size_candidates(rng: random.Random) -> list[Fields]:
    items = [(i, thing) for i, things in enumerate(SIZE_CLASSES) for thing in things]
    rows = []
    for ci, a in items:
        for cj, b in items:
            if cj - ci >= 2:  # b is clearly bigger; show in a random order
                first, second = (a, b) if rng.random() < 0.5 else (b, a)
                rows.append({"a": first, "b": second, "choices": [first, second], "answer": b})
    rng.shuffle(rows)
    return rows


def colour_candidates(rng: random.Random) -> list[Fields]:
    rows = []
    for _ in range(120):
        for thing in sorted(COLOUR_OF):
            answer = COLOUR_OF[thing]
            rows.append({"thing": thing, "choices": pick_choices(rng, answer, COLOURS, 4),
                         "answer": answer})
    rng.shuffle(rows)
    return rows


def ability_candidates(rng: random.Random) -> list[Fields]:
    rows = []
    for _ in range(1500):
        for ability in sorted(ABILITIES):
            can, cannot = ABILITIES[ability]
            answer = rng.choice(can)
            rows.append({"ability": ability, "choices": pick_choices(rng, answer, cannot, 4),
                         "answer": answer})
    rng.shuffle(rows)
    return rows


SIZE_TEMPLATES = (
    Template("Which is bigger, {a} or {b}?{options_}", "{answer}"),
    Template("Think about {a} and {b}. Which one is larger?{options_}", "{answer}"),
    Template("Which of these takes up more space: {a} or {b}?{options_}", "{answer}"),
    Template("Question: What is larger, {a} or {b}?\nAnswer:{options_}", "{answer}"),
    Template("Compare the size of {a} with the size of {b}. Which is the bigger one?"
             "{options_}", "{answer}"),
    Template("If you put {a} next to {b}, which would look bigger?{options_}", "{answer}"),
    Template("Pick the larger thing.\n{a}\n{b}{options_}", "{answer}"),
    Template("{a} or {b}: which is bigger in real life?{options_}", "{answer}"),
    Template("Use common sense. Between {a} and {b}, which one is bigger?{options_}",
             "{answer}"),
    Template("Which would be harder to fit in a car, {a} or {b}?{options_}", "{answer}"),
)

COLOUR_TEMPLATES = (
    Template("What colour is {thing}?{options_}", "{answer}"),
    Template("Question: What is the usual colour of {thing}?\nAnswer:{options_}", "{answer}"),
    Template("Which colour best describes {thing}?{options_}", "{answer}"),
    Template("If you had to paint {thing}, which colour would you use?{options_}",
             "{answer}"),
    Template("Name the colour of {thing}.{options_}", "{answer}"),
    Template("Picture {thing}. What colour do you see?{options_}", "{answer}"),
    Template("Use common sense: {thing} is usually which colour?{options_}", "{answer}"),
    Template("A child asks what colour {thing} is. What do you say?{options_}", "{answer}"),
    Template("Choose the colour of {thing}.{options_}", "{answer}"),
    Template("Complete the sentence: The colour of {thing} is ...{options_}", "{answer}"),
)

ABILITY_TEMPLATES = (
    Template("Which of these animals can {ability}?{options_}", "{answer}"),
    Template("Question: Which animal is able to {ability}?\nAnswer:{options_}", "{answer}"),
    Template("Only one of the following can {ability}. Which one?{options_}", "{answer}"),
    Template("Pick the animal that can {ability}.{options_}", "{answer}"),
    Template("Use common sense. Which animal here can {ability}?{options_}", "{answer}"),
    Template("A zoo keeper says one of these animals can {ability}. Which is it?{options_}",
             "{answer}"),
    Template("Which creature would you expect to {ability}?{options_}", "{answer}"),
    Template("Name the animal that is able to {ability}.{options_}", "{answer}"),
    Template("Of these animals, which one can {ability}?{options_}", "{answer}"),
    Template("Choose the animal that can {ability}; the others cannot.{options_}", "{answer}"),
)


def _size_key(row: Fields) -> str:
    return choices_key("bigger", row["choices"])


def _colour_key(row: Fields) -> str:
    return choices_key(row["thing"], row["choices"])


def _ability_key(row: Fields) -> str:
    return choices_key(row["ability"], row["choices"])


DATASETS: tuple[DatasetSpec, ...] = (
    nl_dataset("nl_size_compare", CLUSTER, size_candidates, _size_key,
               ("a", "b", "choices", "answer"), SIZE_TEMPLATES,
               "the bigger of two everyday things", options_field="choices"),
    nl_dataset("nl_colour", CLUSTER, colour_candidates, _colour_key,
               ("thing", "choices", "answer"), COLOUR_TEMPLATES,
               "the usual colour of a thing", options_field="choices"),
    nl_dataset("nl_animal_ability", CLUSTER, ability_candidates, _ability_key,
               ("ability", "choices", "answer"), ABILITY_TEMPLATES,
               "which animal can do something", options_field="choices"),
)
