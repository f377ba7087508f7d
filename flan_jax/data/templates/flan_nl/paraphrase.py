"""flan-nl cluster "nl_paraphrase": do two sentences mean the same thing (yes / no)?

    nl_synonym_swap: one adjective replaced by a synonym (yes) or an antonym (no)
        {"sentence1": "My neighbour was very happy.", "sentence2": "My neighbour was very glad.",
         "answer": "yes"}
    nl_voice_swap: an active sentence against a passive one with the same roles (yes) or swapped
        roles (no)
        {"sentence1": "The teacher thanked the nurse.",
         "sentence2": "The teacher was thanked by the nurse.", "answer": "no"}
    nl_negation_swap: "not" + antonym (yes) against "not" + the same word or the antonym (no)
        {"sentence1": "The shop is open.", "sentence2": "The shop is not closed.",
         "answer": "yes"}
Options ("no", "yes"); labels balanced. Content key: the two sentences as a set.
"""
from __future__ import annotations

import random

from flan_jax.data.templates.flan_nl._source import nl_dataset
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template

CLUSTER = "nl_paraphrase"
FIELDS: tuple[str, ...] = ("sentence1", "sentence2", "answer")
OPTIONS: tuple[str, ...] = ("no", "yes")

PEOPLE = ("My neighbour", "The old farmer", "Our teacher", "The young pilot", "My sister",
          "The shop owner", "His grandfather", "The new student", "The lawyer", "Her cousin",
          "The bus driver", "My best friend")
PERSON_FRAMES = ("{p} was very {w}.", "{p} seemed {w} this morning.", "{p} is always {w}.",
                 "Everyone agrees that {p_lower} is {w}.", "{p} looked {w} after the meeting.",
                 "{p} felt {w} on Sunday.")
# word, synonym, antonym
ADJECTIVES = (("happy", "glad", "sad"), ("tired", "exhausted", "rested"),
              ("angry", "furious", "calm"), ("quiet", "silent", "noisy"),
              ("clever", "smart", "foolish"), ("rich", "wealthy", "poor"),
              ("brave", "courageous", "cowardly"), ("polite", "courteous", "rude"),
              ("ill", "sick", "healthy"), ("scared", "afraid", "fearless"),
              ("busy", "occupied", "idle"), ("cheerful", "jolly", "gloomy"))

AGENTS = ("the teacher", "the nurse", "my brother", "the police officer", "the baker",
          "the old man", "the coach", "our neighbour", "the doctor", "the child", "the manager",
          "the farmer")
VERBS = ("thanked", "called", "helped", "followed", "invited", "blamed", "praised", "visited",
         "pushed", "warned", "greeted", "ignored")

# (subjects, word, antonym)
STATES = (
    (("The shop", "The door", "The window", "The gate", "The museum", "The bakery", "The drawer", "The bank"), "open", "closed"),
    (("The glass", "The bus", "The box", "The jar", "The car park", "The bottle", "The train", "The theatre"), "full", "empty"),
    (("The baby", "The guard", "The puppy", "The patient", "The driver", "The pilot", "The toddler", "The kitten"), "awake", "asleep"),
    (("The road", "The towel", "The grass", "The floor", "The paint", "The sand", "The path", "The laundry"), "wet", "dry"),
    (("The story", "The rumour", "The claim", "The report", "The answer", "The statement", "The headline", "The excuse"), "true", "false"),
    (("The room", "The street", "The library", "The station", "The kitchen", "The car", "The shirt", "The bathroom"), "clean",
     "dirty"),
    (("The box", "The suitcase", "The bag", "The parcel", "The rock", "The table", "The backpack", "The crate"), "heavy", "light"),
    (("The soup", "The bath", "The tea", "The oven", "The water", "The coffee", "The pan", "The radiator"), "hot", "cold"),
)
STATE_FRAMES = ("{s} is {w}.", "{s} was {w} yesterday.", "I think {s_lower} is {w}.",
                "{s} will be {w} tomorrow.", "Everyone says {s_lower} is {w}.",
                "{s} is still {w}.", "{s} is definitely {w}.", "{s} was {w} this morning.")


def _pair(rng: random.Random, first: str, second: str, answer: str) -> Fields:
    if rng.random() < 0.5:
        first, second = second, first
    return {"sentence1": first, "sentence2": second, "answer": answer}


def synonym_candidates(rng: random.Random) -> list[Fields]:
    rows = []
    for i in range(8000):
        answer = OPTIONS[i % 2]
        word, synonym, antonym = rng.choice(ADJECTIVES)
        p = rng.choice(PEOPLE)
        frame = rng.choice(PERSON_FRAMES)
        fill = lambda w: frame.format(p=p, p_lower=p[0].lower() + p[1:], w=w)  # noqa: E731
        rows.append(_pair(rng, fill(word), fill(synonym if answer == "yes" else antonym), answer))
    return rows


def voice_candidates(rng: random.Random) -> list[Fields]:
    rows = []
    for i in range(8000):
        answer = OPTIONS[i % 2]
        a, b = rng.sample(AGENTS, 2)
        verb = rng.choice(VERBS)
        active = f"{a[0].upper() + a[1:]} {verb} {b}."
        if answer == "yes":
            other = f"{b[0].upper() + b[1:]} was {verb} by {a}."
        elif rng.random() < 0.5:
            other = f"{a[0].upper() + a[1:]} was {verb} by {b}."
        else:
            other = f"{b[0].upper() + b[1:]} {verb} {a}."
        rows.append(_pair(rng, active, other, answer))
    return rows


def negation_candidates(rng: random.Random) -> list[Fields]:
    rows = []
    for i in range(8000):
        answer = OPTIONS[i % 2]
        subjects, word, antonym = rng.choice(STATES)
        if rng.random() < 0.5:
            word, antonym = antonym, word
        s = rng.choice(subjects)
        frame = rng.choice(STATE_FRAMES)
        fill = lambda w: frame.format(s=s, s_lower=s[0].lower() + s[1:], w=w)  # noqa: E731
        if answer == "yes":
            other = fill("not " + antonym)
        else:
            other = fill(rng.choice(("not " + word, antonym)))
        rows.append(_pair(rng, fill(word), other, answer))
    return rows


def _key(row: Fields) -> str:
    return " || ".join(sorted((row["sentence1"], row["sentence2"])))


# Shared by the three datasets (FLAN's paraphrase datasets each have their own; ours differ only
# in how the second sentence is made, so one set of phrasings fits all three).
TEMPLATES = (
    Template("Sentence 1: {sentence1}\nSentence 2: {sentence2}\nDo these two sentences mean "
             "the same thing?{options_}", "{answer}"),
    Template("\"{sentence1}\" and \"{sentence2}\"\n\nAre these sentences paraphrases of each "
             "other?{options_}", "{answer}"),
    Template("Does \"{sentence1}\" say the same as \"{sentence2}\"?{options_}", "{answer}"),
    Template("{sentence1}\n{sentence2}\nDo both sentences describe the same situation?"
             "{options_}", "{answer}"),
    Template("Here are two sentences:\n{sentence1}\n{sentence2}\nIs the second a rewording of "
             "the first?{options_}", "{answer}"),
    Template("Can \"{sentence1}\" be replaced by \"{sentence2}\" without changing the meaning?"
             "{options_}", "{answer}"),
    Template("First: {sentence1}\nSecond: {sentence2}\nSame meaning?{options_}", "{answer}"),
    Template("Is the meaning of \"{sentence2}\" identical to the meaning of \"{sentence1}\"?"
             "{options_}", "{answer}"),
    Template("I wrote \"{sentence1}\" My friend wrote \"{sentence2}\" Did we say the same "
             "thing?{options_}", "{answer}"),
    Template("Decide whether the two sentences are equivalent.\nA: {sentence1}\nB: {sentence2}"
             "{options_}", "{answer}"),
)

DATASETS: tuple[DatasetSpec, ...] = (
    nl_dataset("nl_synonym_swap", CLUSTER, synonym_candidates, _key, FIELDS, TEMPLATES,
               "same meaning after swapping in a synonym or an antonym", options=OPTIONS),
    nl_dataset("nl_voice_swap", CLUSTER, voice_candidates, _key, FIELDS, TEMPLATES,
               "active versus passive sentence with the same or swapped roles", options=OPTIONS),
    nl_dataset("nl_negation_swap", CLUSTER, negation_candidates, _key, FIELDS, TEMPLATES,
               "'not' plus an antonym versus the plain word", options=OPTIONS),
)
