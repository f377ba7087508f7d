"""flan-nl cluster "nl_nli": does a premise entail a hypothesis (yes / can't tell / no)?

Premises describe a small invented world (people with jobs and home cities, shopping trips,
animals); hypotheses follow from them through everyday knowledge (Lyon is in France; apples are
fruit; a sleeping dog is resting), contradict them, or are unrelated:
    nl_nli_people:  {"premise": "Omar is a baker who lives in Lyon.",
                     "hypothesis": "Omar lives in France.", "answer": "yes"}
    nl_nli_market:  {"premise": "Lena bought six pears at the market on Monday.",
                     "hypothesis": "Lena did not buy any fruit.", "answer": "no"}
    nl_nli_animals: {"premise": "The old dog is sleeping under the table.",
                     "hypothesis": "The dog is three years old.",
                     "answer": "it is not possible to tell"}
Options ("yes", "it is not possible to tell", "no"), the FLAN wording for three-way NLI (e.g.
its ANLI/RTE templates); labels balanced. Content key: premise + hypothesis.
"""
from __future__ import annotations

import random

from flan_jax.data.templates.flan_nl._source import nl_dataset
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template

CLUSTER = "nl_nli"
FIELDS: tuple[str, ...] = ("premise", "hypothesis", "answer")
YES, MAYBE, NO = "yes", "it is not possible to tell", "no"
OPTIONS: tuple[str, ...] = (YES, MAYBE, NO)

NAMES = ("Omar", "Lena", "Priya", "Tom", "Sofia", "Kenji", "Amara", "Lucas", "Ines", "Daniel",
         "Mei", "Jonas", "Fatima", "Mateo", "Hannah", "Ravi", "Chloe", "Nikolai", "Ada", "Samuel")
JOBS = ("baker", "teacher", "nurse", "pilot", "farmer", "lawyer", "painter", "dentist",
        "mechanic", "librarian", "chef", "plumber")
CITY_COUNTRY = (("Paris", "France"), ("Lyon", "France"), ("Madrid", "Spain"),
                ("Seville", "Spain"), ("Rome", "Italy"), ("Milan", "Italy"),
                ("Berlin", "Germany"), ("Munich", "Germany"), ("Tokyo", "Japan"),
                ("Osaka", "Japan"), ("Toronto", "Canada"), ("Sydney", "Australia"),
                ("Cairo", "Egypt"), ("Lisbon", "Portugal"), ("Dublin", "Ireland"),
                ("Chicago", "the United States"), ("Mumbai", "India"), ("Seoul", "South Korea"))
PEOPLE_PREMISES = ("{name} is a {job} who lives in {city}.",
                   "{name} works as a {job} in {city}.",
                   "{name}, a {job}, has lived in {city} for many years.")
PEOPLE_HYPOTHESES = {
    YES: ("{name} lives in {country}.", "{name} has a job.", "{name} lives in a city.",
          "Someone in {country} works as a {job}."),
    NO: ("{name} has never been to {country}.", "{name} does not have a job.",
         "Nobody in {city} works as a {job}.", "{name} has never lived in {city}."),
    MAYBE: ("{name} has two children.", "{name} owns a car.", "{name} was born in {other}.",
            "{name} enjoys playing chess.", "{name} is married.", "{name} speaks four languages."),
}

FRUIT = ("apples", "pears", "plums", "peaches", "oranges", "lemons", "cherries", "bananas")
COUNTS = ("three", "four", "five", "six", "seven", "eight", "nine", "ten")
SHOPS = ("the market", "the corner shop", "the supermarket", "a farm shop")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MARKET_PREMISES = ("{name} bought {count} {fruit} at {shop} on {day}.",
                   "On {day}, {name} went to {shop} and bought {count} {fruit}.")
MARKET_HYPOTHESES = {
    YES: ("{name} bought some fruit.", "{name} went shopping on {day}.",
          "{name} bought more than two {fruit}.", "{name} visited {shop}."),
    NO: ("{name} did not buy any fruit.", "{name} stayed at home all day on {day}.",
         "{name} bought only one {fruit_one}.", "{name} has never been to {shop}."),
    MAYBE: ("{name} paid with cash.", "The {fruit} were on sale.",
            "{name} went to {shop} with a friend.", "{name} bought the {fruit} for a pie.",
            "{name} also bought bread.", "It was raining on {day}."),
}
FRUIT_ONE = dict(zip(FRUIT, ("apple", "pear", "plum", "peach", "orange", "lemon", "cherry",
                             "banana")))

ANIMALS = ("dog", "cat", "horse", "rabbit", "goat", "duck", "cow", "sheep", "pig", "fox")
ADJECTIVES = ("old", "small", "brown", "white", "young", "fat", "grey")
PLACES = ("under the table", "in the garden", "by the river", "near the barn", "on the porch",
          "in the yard")
# action -> (premise verb phrase, hypotheses it entails, hypotheses it contradicts)
ACTIONS = {
    "sleeping": ("is sleeping", ("The {animal} is resting.", "An animal is asleep {place}."),
                 ("The {animal} is running around.", "The {animal} is wide awake.")),
    "eating": ("is eating", ("The {animal} is having a meal.", "An animal is eating {place}."),
               ("The {animal} is not eating anything.", "The {animal} is fast asleep.")),
    "running": ("is running", ("The {animal} is moving.", "An animal is running {place}."),
                ("The {animal} is lying still.", "The {animal} is asleep.")),
    "noisy": ("is making a lot of noise", ("The {animal} is noisy.",
                                             "An animal is making noise {place}."),
                ("The {animal} is silent.", "The {animal} is quiet.")),
}
ANIMAL_YES = ("There is an animal {place}.",)
ANIMAL_NO = ("There is no animal {place}.",)
ANIMAL_MAYBE = ("The {animal} is three years old.", "The {animal} belongs to a farmer.",
                "Someone is watching the {animal}.", "The {animal} has a name.",
                "The {animal} was born in the spring.", "It is a sunny day.")


def _rows(rng: random.Random, n: int, make) -> list[Fields]:
    rows = []
    for i in range(n):
        answer = OPTIONS[i % 3]
        premise, hypothesis = make(rng, answer)
        rows.append({"premise": premise, "hypothesis": hypothesis, "answer": answer})
    return rows


def _people(rng: random.Random, answer: str) -> tuple[str, str]:
    (city, country), (other, _) = rng.sample(CITY_COUNTRY, 2)
    values = {"name": rng.choice(NAMES), "job": rng.choice(JOBS), "city": city,
              "country": country, "other": other}
    return (rng.choice(PEOPLE_PREMISES).format(**values),
            rng.choice(PEOPLE_HYPOTHESES[answer]).format(**values))


def _market(rng: random.Random, answer: str) -> tuple[str, str]:
    fruit = rng.choice(FRUIT)
    values = {"name": rng.choice(NAMES), "count": rng.choice(COUNTS), "fruit": fruit,
              "fruit_one": FRUIT_ONE[fruit], "shop": rng.choice(SHOPS), "day": rng.choice(DAYS)}
    return (rng.choice(MARKET_PREMISES).format(**values),
            rng.choice(MARKET_HYPOTHESES[answer]).format(**values))


def _animals(rng: random.Random, answer: str) -> tuple[str, str]:
    verb, entailed, contradicted = ACTIONS[rng.choice(sorted(ACTIONS))]
    values = {"animal": rng.choice(ANIMALS), "adj": rng.choice(ADJECTIVES),
              "place": rng.choice(PLACES)}
    premise = "The {adj} {animal} " + verb + " {place}."
    choices = {YES: entailed + ANIMAL_YES, NO: contradicted + ANIMAL_NO, MAYBE: ANIMAL_MAYBE}
    return premise.format(**values), rng.choice(choices[answer]).format(**values)


def people_candidates(rng: random.Random) -> list[Fields]:
    return _rows(rng, 15000, _people)


def market_candidates(rng: random.Random) -> list[Fields]:
    return _rows(rng, 15000, _market)


def animal_candidates(rng: random.Random) -> list[Fields]:
    return _rows(rng, 15000, _animals)


def _key(row: Fields) -> str:
    return row["premise"] + " || " + row["hypothesis"]


# Shared by the three datasets, as FLAN shares its ANLI templates over the three rounds.
TEMPLATES = (
    Template("{premise}\n\nBased on the paragraph above, can we conclude that "
             "\"{hypothesis}\"?{options_}", "{answer}"),
    Template("Premise: {premise}\nHypothesis: {hypothesis}\nDoes the premise entail the "
             "hypothesis?{options_}", "{answer}"),
    Template("Read the text and decide if the sentence is true.\n\nText: {premise}\n"
             "Sentence: {hypothesis}{options_}", "{answer}"),
    Template("{premise}\nDoes it follow that {hypothesis}{options_}", "{answer}"),
    Template("If \"{premise}\", is it true that \"{hypothesis}\"?{options_}", "{answer}"),
    Template("Given that {premise} Is the following statement correct? {hypothesis}{options_}",
             "{answer}"),
    Template("Here is a fact: {premise}\nCan you infer this from it? {hypothesis}{options_}",
             "{answer}"),
    Template("Suppose {premise} Can we say that {hypothesis}{options_}", "{answer}"),
    Template("{premise}\nQuestion: {hypothesis} Yes, no, or maybe?{options_}",
             "{answer}"),
    Template("Statement one: {premise}\nStatement two: {hypothesis}\nIf statement one is true, "
             "is statement two true as well?{options_}", "{answer}"),
)

DATASETS: tuple[DatasetSpec, ...] = (
    nl_dataset("nl_nli_people", CLUSTER, people_candidates, _key, FIELDS, TEMPLATES,
               "entailment about a person's job and home city", options=OPTIONS),
    nl_dataset("nl_nli_market", CLUSTER, market_candidates, _key, FIELDS, TEMPLATES,
               "entailment about a shopping trip", options=OPTIONS),
    nl_dataset("nl_nli_animals", CLUSTER, animal_candidates, _key, FIELDS, TEMPLATES,
               "entailment about what an animal is doing", options=OPTIONS),
)
