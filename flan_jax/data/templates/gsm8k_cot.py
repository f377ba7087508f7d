"""GSM8K (Cobbe et al. 2021) as the chain-of-thought generation benchmark: 8 worked exemplars
written for flan_jax, in the CoT collection's answer convention (the rationale, then
f"{COT_ANSWER_MARKER} <number>." as in `data.templates.cot`), and the prompt layout.

Prompt (8-shot; every exemplar and the question in the same "Q:/A:" frame, blank lines
between them; the model continues after the last "A:"):

    Q: A baker makes 24 muffins and sells 15 of them. ...
    A: After selling she has 24 - 15 = 9 muffins. ... So the answer is 19.

    ... (7 more)

    Q: <test question>
    A:

The exemplars are our own problems (not from GSM8K's train or test split; the numbers were
checked by hand), so no test question leaks into a prompt.
"""
from __future__ import annotations

from flan_jax.data.templates.spec import COT_ANSWER_MARKER

QUESTION = "Q: {question}\nA:"
SEPARATOR = "\n\n"

# (question, rationale, answer)
EXEMPLARS: tuple[tuple[str, str, str], ...] = (
    ("A baker makes 24 muffins and sells 15 of them. Then she bakes 10 more. How many muffins does "
     "she have now?",
     "After selling she has 24 - 15 = 9 muffins. Baking 10 more gives 9 + 10 = 19.", "19"),
    ("Tom reads 12 pages every day. How many pages does he read in two weeks?",
     "Two weeks are 2 * 7 = 14 days. He reads 12 * 14 = 168 pages.", "168"),
    ("A carton holds 6 eggs. How many cartons are needed to pack 45 eggs?",
     "45 / 6 = 7.5, so 7 cartons hold only 42 eggs and one more carton is needed: 7 + 1 = 8.", "8"),
    ("Maria buys 3 notebooks at $4 each and a pen for $2. She pays with a $20 bill. How much change "
     "does she get?",
     "The notebooks cost 3 * 4 = 12 dollars, and with the pen 12 + 2 = 14 dollars. Her change is "
     "20 - 14 = 6 dollars.", "6"),
    ("A train goes 60 miles per hour for 3 hours, then 40 miles per hour for 2 hours. How many miles "
     "does it travel?",
     "First 60 * 3 = 180 miles, then 40 * 2 = 80 miles. In all 180 + 80 = 260 miles.", "260"),
    ("A class has 30 students. Two fifths of them walk to school and the others take the bus. How "
     "many take the bus?",
     "Two fifths of 30 is 30 * 2 / 5 = 12 students who walk, so 30 - 12 = 18 take the bus.", "18"),
    ("Sam has twice as many marbles as Lee, and Lee has 7. How many marbles do they have together?",
     "Sam has 2 * 7 = 14 marbles. Together they have 14 + 7 = 21.", "21"),
    ("A jacket costs $40 and is sold at 25% off. What is the sale price in dollars?",
     "The discount is 40 * 25 / 100 = 10 dollars, so the price is 40 - 10 = 30 dollars.", "30"),
)


def exemplar_text(question: str, rationale: str, answer: str) -> str:
    """One worked exemplar: 'Q: ...\\nA: <rationale> So the answer is <answer>.'"""
    return f"{QUESTION.format(question=question)} {rationale} {COT_ANSWER_MARKER} {answer}."


def prompt(question: str, shots: int = len(EXEMPLARS)) -> str:
    """The first `shots` exemplars, then the question (module docstring)."""
    parts = [exemplar_text(*e) for e in EXEMPLARS[:shots]]
    return SEPARATOR.join(parts + [QUESTION.format(question=question.strip())])
