"""flan-mini cluster "mini_formatting": rewrite a date or a number in another written form.

    mini_date_format:  {"date": "2021-03-07", "answer": "March 7, 2021"}
    mini_number_words: {"number": "42", "answer": "forty-two"}
    mini_thousands:    {"number": "12345", "answer": "12,345"}
"""
from __future__ import annotations

import random

from flan_jax.data.templates.flan_mini._source import mini_dataset
from flan_jax.data.templates.flan_mini.words import MONTHS
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template

CLUSTER = "mini_formatting"
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # Feb capped at 28: no leap logic
_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_in_words(x: int) -> str:
    """0..99 in English words with a hyphen between tens and ones: 42 -> "forty-two"."""
    if not 0 <= x <= 99:
        raise ValueError(f"number_in_words covers 0..99, got {x}")
    if x < 20:
        return _ONES[x]
    tens, ones = divmod(x, 10)
    return _TENS[tens] if ones == 0 else f"{_TENS[tens]}-{_ONES[ones]}"


def generate_date(seed: int, n: int) -> list[Fields]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        year, month = rng.randint(1990, 2030), rng.randint(1, 12)
        day = rng.randint(1, _DAYS_IN_MONTH[month - 1])
        rows.append({
            "date": f"{year:04d}-{month:02d}-{day:02d}",
            "answer": f"{MONTHS[month - 1]} {day}, {year}",
        })
    return rows


def generate_number_words(seed: int, n: int) -> list[Fields]:
    rng = random.Random(seed)
    numbers = [rng.randint(0, 99) for _ in range(n)]
    return [{"number": str(x), "answer": number_in_words(x)} for x in numbers]


def generate_thousands(seed: int, n: int) -> list[Fields]:
    """Numbers from 1,000 to 999,999, written with a comma every three digits."""
    rng = random.Random(seed)
    numbers = [rng.randint(1000, 999_999) for _ in range(n)]
    return [{"number": str(x), "answer": f"{x:,}"} for x in numbers]


DATE_TEMPLATES = (
    Template("Write the date {date} in words, like \"January 5, 2020\".", "{answer}"),
    Template("Convert {date} (year-month-day) to month name, day, year.", "{answer}"),
    Template("iso: {date}\nlong form:", "{answer}"),
    Template("How would a letter write the date {date}?", "{answer}"),
    Template("Spell out the month in this date: {date}", "{answer}"),
    Template("Reformat {date} so the month is written as a word.", "{answer}"),
    Template("The form says {date}. Write it the way people say it.", "{answer}"),
    Template("{date} ->", "{answer}"),
    Template("Turn the numeric date {date} into a readable one.", "{answer}"),
    Template("Date: {date}\nWritten out:", "{answer}"),
)

NUMBER_WORDS_TEMPLATES = (
    Template("Write {number} in words.", "{answer}"),
    Template("Spell out the number {number}.", "{answer}"),
    Template("digits: {number}\nwords:", "{answer}"),
    Template("How do you write {number} on a cheque, in letters?", "{answer}"),
    Template("Say {number} in English words.", "{answer}"),
    Template("Convert the numeral {number} to words.", "{answer}"),
    Template("What is \"{number}\" when written out?", "{answer}"),
    Template("{number} in letters:", "{answer}"),
    Template("Replace the digits {number} with the English name of the number.", "{answer}"),
    Template("Number: {number}\nName of the number:", "{answer}"),
)

THOUSANDS_TEMPLATES = (
    Template("Add thousands separators to {number}.", "{answer}"),
    Template("Write {number} with commas between groups of three digits.", "{answer}"),
    Template("plain: {number}\nwith commas:", "{answer}"),
    Template("Format the number {number} so it is easier to read.", "{answer}"),
    Template("Put a comma before the last three digits of {number}.", "{answer}"),
    Template("How is {number} written in an English report, with commas?", "{answer}"),
    Template("Insert commas into {number} the usual way.", "{answer}"),
    Template("{number} -> grouped ->", "{answer}"),
    Template("Group the digits of {number} in threes using a comma.", "{answer}"),
    Template("Number: {number}\nFormatted:", "{answer}"),
)

DATASETS: tuple[DatasetSpec, ...] = (
    mini_dataset("mini_date_format", CLUSTER, generate_date, ("date", "answer"),
                 DATE_TEMPLATES, "YYYY-MM-DD to \"Month D, YYYY\"", metric="exact_match"),
    mini_dataset("mini_number_words", CLUSTER, generate_number_words, ("number", "answer"),
                 NUMBER_WORDS_TEMPLATES, "0 to 99 in English words", metric="exact_match"),
    mini_dataset("mini_thousands", CLUSTER, generate_thousands, ("number", "answer"),
                 THOUSANDS_TEMPLATES, "1000 to 999999 with comma separators",
                 metric="exact_match"),
)
