"""flan-mini cluster "mini_arithmetic": add, subtract and double small whole numbers.

Fields are strings (so every row is a flat dict of text for tf.data), e.g. mini_add:
    {"a": "23", "b": "9", "answer": "32"}
Answers are free text (no option set), scored by exact match.
"""
from __future__ import annotations

import random

from flan_jax.data.templates.flan_mini._source import mini_dataset
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template

CLUSTER = "mini_arithmetic"
MAX_OPERAND = 49


def generate_add(seed: int, n: int) -> list[Fields]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(0, MAX_OPERAND), rng.randint(0, MAX_OPERAND)
        rows.append({"a": str(a), "b": str(b), "answer": str(a + b)})
    return rows


def generate_subtract(seed: int, n: int) -> list[Fields]:
    """a - b with a >= b, so answers are never negative."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(0, MAX_OPERAND), rng.randint(0, MAX_OPERAND)
        a, b = max(a, b), min(a, b)
        rows.append({"a": str(a), "b": str(b), "answer": str(a - b)})
    return rows


def generate_double(seed: int, n: int) -> list[Fields]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a = rng.randint(0, MAX_OPERAND)
        rows.append({"a": str(a), "answer": str(2 * a)})
    return rows


ADD_TEMPLATES = (
    Template("What is {a} plus {b}?", "{answer}"),
    Template("Add {a} and {b}.", "{answer}"),
    Template("{a} + {b} =", "{answer}"),
    Template("Compute the sum of {a} and {b}.", "{answer}"),
    Template("If you have {a} coins and find {b} more, how many coins do you have?", "{answer}"),
    Template("Work out {a} + {b} and give only the number.", "{answer}"),
    Template("Question: {a} added to {b} makes what?\nAnswer:", "{answer}"),
    Template("Find the total: {a} and {b}.", "{answer}"),
    Template("Sum these two numbers: {a}, {b}", "{answer}"),
    Template("What do you get when {b} is added to {a}?", "{answer}"),
)

SUBTRACT_TEMPLATES = (
    Template("What is {a} minus {b}?", "{answer}"),
    Template("Subtract {b} from {a}.", "{answer}"),
    Template("{a} - {b} =", "{answer}"),
    Template("Compute the difference {a} - {b}.", "{answer}"),
    Template("You had {a} stickers and gave away {b}. How many are left?", "{answer}"),
    Template("Take {b} away from {a}. What remains?", "{answer}"),
    Template("Question: how much is {a} take away {b}?\nAnswer:", "{answer}"),
    Template("Work out {a} - {b} and reply with the number only.", "{answer}"),
    Template("By how much is {a} bigger than {b}?", "{answer}"),
    Template("Find the result of removing {b} from {a}.", "{answer}"),
)

DOUBLE_TEMPLATES = (
    Template("What is twice {a}?", "{answer}"),
    Template("Double the number {a}.", "{answer}"),
    Template("{a} * 2 =", "{answer}"),
    Template("Multiply {a} by two.", "{answer}"),
    Template("A box holds {a} eggs. How many eggs are in two such boxes?", "{answer}"),
    Template("What is {a} + {a}?", "{answer}"),
    Template("Question: what number is two times {a}?\nAnswer:", "{answer}"),
    Template("Give the double of {a}.", "{answer}"),
    Template("If {a} is doubled, what do you get?", "{answer}"),
    Template("Compute 2 x {a}.", "{answer}"),
)

DATASETS: tuple[DatasetSpec, ...] = (
    mini_dataset("mini_add", CLUSTER, generate_add, ("a", "b", "answer"), ADD_TEMPLATES,
                 "sum of two numbers from 0 to 49", metric="exact_match"),
    mini_dataset("mini_subtract", CLUSTER, generate_subtract, ("a", "b", "answer"),
                 SUBTRACT_TEMPLATES, "difference a - b with 0 <= b <= a <= 49",
                 metric="exact_match"),
    mini_dataset("mini_double", CLUSTER, generate_double, ("a", "answer"), DOUBLE_TEMPLATES,
                 "twice a number from 0 to 49", metric="exact_match"),
)
