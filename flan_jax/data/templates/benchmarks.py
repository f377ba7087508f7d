"""The `benchmarks` collection: packaged datasets outside FLAN 2021's catalogue, FLAN-style.

Social IQa and CommonsenseQA join the commonsense cluster (everyday and social reasoning, multiple
choice, like COPA and PIQA); SciQ and OpenBookQA without its fact join closed-book QA (science
multiple choice answered from memory, like ARC). Ten templates each, our own wording; the last
one turns the task around. Their rows come only from packages (`PackagedSource`; TFDS 4.9.10 has
no builder for the first three), so `to_fields` reads the Hugging Face field names directly.

OpenBookQA is also FLAN 2021's `openbookqa` (reading comprehension), whose templates all show the
supporting fact (`fact1`); the packaged "main" config has no fact, so it is served here as a
closed-book dataset instead (`openbookqa_closed_book`).

Worked example (social_i_qa, label "2" = answerB):

    row    {"context": "Tracy didn't go home that evening.", "question": "What does Tracy need
            to do before this?", "answerA": "make a new plan", "answerB": "find somewhere to
            go", "answerC": "go home", "label": "2"}
    fields {"context": "Tracy didn't go home that evening.", "question": "What does Tracy need
            to do before this?", "options": ["make a new plan", "find somewhere to go",
            "go home"], "answer": "find somewhere to go"}

SciQ keeps its correct answer apart from three distractors; the four options are put in the
order of SHA-256(question + "\\n" + option), so the answer's position varies from row to row
but is the same in every process.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from flan_jax.data.sources.packaged_source import PackagedSource
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template

T = Template
_LETTERS = ("A", "B", "C", "D", "E")


def _pick(options: list[str], index: int) -> Fields | None:
    return None if not 0 <= index < len(options) else {"options": options, "answer": options[index]}


# ---------------------------------------------------------------------------------------------
# Social IQa: reasoning about people's motivations, reactions and what happens next.
def social_iqa_fields(row: Mapping[str, Any]) -> Fields | None:
    options = [row["answerA"], row["answerB"], row["answerC"]]
    label = str(row["label"]).strip()
    picked = _pick(options, int(label) - 1) if label.isdigit() else None
    if picked is None:
        return None
    return {"context": row["context"], "question": row["question"], **picked}


SOCIAL_IQA = DatasetSpec(
    name="social_i_qa",
    cluster="commonsense",
    sources={"social_i_qa": PackagedSource("social_i_qa", None, ("validation",))},
    to_fields=social_iqa_fields,
    fields=("context", "question", "options", "answer"),
    templates=(
        T("{context}\n\n{question}{options_}", "{answer}"),
        T("Situation: {context}\nQuestion: {question}\nPick the most sensible answer.{options_}",
          "{answer}"),
        T("Think about how people usually feel and act. {context} {question}{options_}",
          "{answer}"),
        T("Here is something that happened: \"{context}\"\n\nGiven that, {question}{options_}",
          "{answer}"),
        T("Read the short scene and answer the question about the people in it.\n\n{context}\n"
          "{question}{options_}", "{answer}"),
        T("Context: {context}\n\nQ: {question}{options_}\nA:", "{answer}"),
        T("{question}\n\nUse this to decide: {context}{options_}", "{answer}"),
        T("Everyday social reasoning.\n{context}\nWhich answer fits best? {question}{options_}",
          "{answer}"),
        T("My friend told me: \"{context}\" I wondered, {question}{options_}", "{answer}"),
        T("{context}\n\nWrite a question about this situation whose answer is \"{answer}\".",
          "{question}", inverted=True),
    ),
    options_field="options",
    description="Social IQa (validation only, packaged): social commonsense, 3 choices.",
)


# ---------------------------------------------------------------------------------------------
# CommonsenseQA: five-way questions about everyday concepts.
def commonsense_qa_fields(row: Mapping[str, Any]) -> Fields | None:
    choices = row["choices"]
    options = [str(t) for t in choices["text"]]
    key = str(row["answerKey"])
    labels = [str(x) for x in choices["label"]]
    picked = _pick(options, labels.index(key)) if key in labels else None
    return None if picked is None else {"question": row["question"], **picked}


COMMONSENSE_QA = DatasetSpec(
    name="commonsense_qa",
    cluster="commonsense",
    sources={"commonsense_qa": PackagedSource("tau/commonsense_qa", None, ("validation",))},
    to_fields=commonsense_qa_fields,
    fields=("question", "options", "answer"),
    templates=(
        T("{question}{options_}", "{answer}"),
        T("Use common sense to answer.\n\n{question}{options_}", "{answer}"),
        T("Question: {question}\nWhich choice makes the most sense?{options_}", "{answer}"),
        T("Pick the answer an ordinary person would give: {question}{options_}", "{answer}"),
        T("{question}{options_}\nAnswer:", "{answer}"),
        T("Everyday knowledge quiz. {question}{options_}", "{answer}"),
        T("Choose the best option.{options_}\n\n{question}", "{answer}"),
        T("Someone asks you: \"{question}\" What do you say?{options_}", "{answer}"),
        T("Q: {question}\nThink about what is usually true, then choose.{options_}\nA:",
          "{answer}"),
        T("Write a common-sense multiple-choice question whose answer is \"{answer}\".",
          "{question}", inverted=True),
    ),
    options_field="options",
    description="CommonsenseQA (validation only, packaged): 5 choices.",
)


# ---------------------------------------------------------------------------------------------
# SciQ: crowd-written science exam questions with three distractors.
def _hash_order(question: str, options: list[str]) -> list[str]:
    key = lambda o: hashlib.sha256(f"{question}\n{o}".encode("utf-8")).hexdigest()  # noqa: E731
    return sorted(options, key=lambda o: (key(o), o))


def sciq_fields(row: Mapping[str, Any]) -> Fields | None:
    answer = str(row["correct_answer"])
    distractors = [str(row[f"distractor{i}"]) for i in (1, 2, 3)]
    options = _hash_order(row["question"], [answer] + distractors)
    return {"question": row["question"], "options": options, "answer": answer}


SCIQ = DatasetSpec(
    name="sciq",
    cluster="closed_book_qa",
    sources={"sciq": PackagedSource("sciq", None, ("validation",))},
    to_fields=sciq_fields,
    fields=("question", "options", "answer"),
    templates=(
        T("{question}{options_}", "{answer}"),
        T("Answer this science question.\n\n{question}{options_}", "{answer}"),
        T("Science quiz: {question}{options_}\nAnswer:", "{answer}"),
        T("Q: {question}\nChoose the correct answer.{options_}", "{answer}"),
        T("From what you know about biology, chemistry, physics and earth science: {question}"
          "{options_}", "{answer}"),
        T("A student is asked: \"{question}\" What is the right answer?{options_}", "{answer}"),
        T("Pick one.{options_}\n\n{question}", "{answer}"),
        T("Here is an exam question.\n{question}\nWhich option is correct?{options_}", "{answer}"),
        T("{question}\n\nSelect the scientifically correct answer.{options_}", "{answer}"),
        T("Write a science question whose answer is \"{answer}\".", "{question}", inverted=True),
    ),
    options_field="options",
    description="SciQ (validation only, packaged): 4 options in content-hash order.",
)


# ---------------------------------------------------------------------------------------------
# OpenBookQA without its fact (HF "main" rows; the reader rebuilds the test split's rows too).
def openbookqa_closed_book_fields(row: Mapping[str, Any]) -> Fields | None:
    labels = [str(x) for x in row["choices"]["label"]]
    key = str(row["answerKey"])
    texts = [str(t) for t in row["choices"]["text"]]
    picked = _pick(texts, labels.index(key)) if key in labels else None
    return None if picked is None else {"question": row["question_stem"], **picked}


OPENBOOKQA_CLOSED_BOOK = DatasetSpec(
    name="openbookqa_closed_book",
    cluster="closed_book_qa",
    sources={"openbookqa_closed_book": PackagedSource("openbookqa", "main",
                                                      ("validation", "test"))},
    to_fields=openbookqa_closed_book_fields,
    fields=("question", "options", "answer"),
    templates=(
        T("{question}{options_}", "{answer}"),
        T("Complete the statement about elementary science.\n\n{question}{options_}", "{answer}"),
        T("{question} ...{options_}\nBest completion:", "{answer}"),
        T("Science question: {question}{options_}", "{answer}"),
        T("Which option correctly finishes or answers this?\n{question}{options_}", "{answer}"),
        T("Use basic science facts you know. {question}{options_}", "{answer}"),
        T("Q: {question}{options_}\nA:", "{answer}"),
        T("A grade-school test asks: \"{question}\" Choose the right answer.{options_}",
          "{answer}"),
        T("{question}\n\nPick the correct choice.{options_}", "{answer}"),
        T("Write an elementary science question or unfinished statement whose correct "
          "completion is \"{answer}\".", "{question}", inverted=True),
    ),
    options_field="options",
    description="OpenBookQA main (validation and test, packaged) without the supporting fact.",
)

DATASETS: tuple[DatasetSpec, ...] = (SOCIAL_IQA, COMMONSENSE_QA, SCIQ, OPENBOOKQA_CLOSED_BOOK)


def all_datasets() -> tuple[DatasetSpec, ...]:
    return DATASETS
