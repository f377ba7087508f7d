"""FLAN 2021 closed-book QA cluster: ARC (easy + challenge), Natural Questions (open), TriviaQA.

The model answers from memory: no passage is shown.

Worked example (ai2_arc/ARC-Easy; `answerKey` and the choice labels are class indices over
"A".."E", so 1 = "B"):

    raw    {"id": "q1", "question": "Which gas do plants take in?", "answerKey": 1,
            "choices": {"text": ["oxygen", "carbon dioxide"], "label": [0, 1]}}
    fields {"question": "Which gas do plants take in?",
            "options": ["oxygen", "carbon dioxide"], "answer": "carbon dioxide"}

Natural Questions (open) questions come lower-case without a question mark; the mapping adds
"?" so templates can quote them as questions:

    raw    {"question": "who wrote hamlet", "answer": ["William Shakespeare", "Shakespeare"]}
    fields {"question": "who wrote hamlet?", "answer": "William Shakespeare"}
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flan_jax.data.templates.flan2021.common import first_text
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template, TfdsSource

T = Template


def _as_question(text: str) -> str:
    text = text.strip()
    return text if text.endswith("?") else text + "?"


# ---------------------------------------------------------------------------------------------
# ARC: grade-school science multiple choice; two levels share the templates.
def arc_fields(ex: Mapping[str, Any]) -> Fields | None:
    choices = ex["choices"]
    options = list(choices["text"])
    answer = None
    for text, label in zip(options, choices["label"]):
        if label == ex["answerKey"]:
            answer = text
    if answer is None:
        return None
    return {"question": ex["question"], "options": options, "answer": answer}


_ARC_SPLITS = {"train": "train", "validation": "validation", "test": "test"}
ARC = DatasetSpec(
    name="arc",
    cluster="closed_book_qa",
    sources={
        "arc_easy": TfdsSource("ai2_arc/ARC-Easy", "1.0.0", _ARC_SPLITS),
        "arc_challenge": TfdsSource("ai2_arc/ARC-Challenge", "1.0.0", _ARC_SPLITS),
    },
    to_fields=arc_fields,
    fields=("question", "options", "answer"),
    templates=(
        T("{question}{options_}", "{answer}"),
        T("Science question: {question}\nChoose the correct answer.{options_}", "{answer}"),
        T("Answer this school science question.\n\n{question}{options_}", "{answer}"),
        T("Question: {question}{options_}\nAnswer:", "{answer}"),
        T("Here is a question from a science exam: \"{question}\" Which option is right?"
          "{options_}", "{answer}"),
        T("Pick the best answer.{options_}\n\n{question}", "{answer}"),
        T("My kid asked me this for homework: {question} What should I tell them?{options_}",
          "{answer}"),
        T("Use what you know about science to answer:\n{question}{options_}", "{answer}"),
        T("Q: {question}\nWhich of the following is correct?{options_}", "{answer}"),
        T("Write a multiple-choice science question whose correct answer is \"{answer}\".",
          "{question}", inverted=True),
    ),
    options_field="options",
    description="AI2 Reasoning Challenge, Easy and Challenge sets (one task each).",
)


# ---------------------------------------------------------------------------------------------
# Natural Questions (open): Google queries with short answers; the first answer is the target.
def natural_questions_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = first_text(ex["answer"])
    if answer is None:
        return None
    return {"question": _as_question(ex["question"]), "answer": answer}


NATURAL_QUESTIONS = DatasetSpec(
    name="natural_questions",
    cluster="closed_book_qa",
    sources={"natural_questions": TfdsSource("natural_questions_open", "1.0.0",
                                             {"train": "train", "validation": "validation"})},
    to_fields=natural_questions_fields,
    fields=("question", "answer"),
    templates=(
        T("{question}", "{answer}"),
        T("Please answer: {question}", "{answer}"),
        T("Question: {question}\nAnswer:", "{answer}"),
        T("I searched the web for \"{question}\" What is the answer?", "{answer}"),
        T("Please give a short answer. {question}", "{answer}"),
        T("From general knowledge: {question}", "{answer}"),
        T("Q: {question}\nA (a few words):", "{answer}"),
        T("What would you say if someone asked you {question}", "{answer}"),
        T("Quick question -- {question} Just the answer, please.", "{answer}"),
        T("Write a question someone might type into a search engine whose answer is \"{answer}\".",
          "{question}", inverted=True),
    ),
    metric="exact_match",
    description="Natural Questions open-domain subset; first reference answer is the target.",
)


# ---------------------------------------------------------------------------------------------
# TriviaQA without evidence documents (rc.nocontext); the test split has no answers.
def trivia_qa_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = ex["answer"]["value"].strip()
    if not answer or answer == "<unk>":
        return None
    return {"question": ex["question"], "answer": answer}


TRIVIA_QA = DatasetSpec(
    name="trivia_qa",
    cluster="closed_book_qa",
    sources={"trivia_qa": TfdsSource("trivia_qa/rc.nocontext", "1.1.0",
                                     {"train": "train", "validation": "validation"})},
    to_fields=trivia_qa_fields,
    fields=("question", "answer"),
    templates=(
        T("{question}", "{answer}"),
        T("Trivia question: {question}\nAnswer:", "{answer}"),
        T("Here's a quiz question for you. {question}", "{answer}"),
        T("Answer this trivia question without looking anything up.\n\n{question}", "{answer}"),
        T("Q: {question}\nA:", "{answer}"),
        T("At a pub quiz the host asks: \"{question}\" What is the answer?", "{answer}"),
        T("Test your general knowledge: {question}", "{answer}"),
        T("What is the answer to this question? {question}", "{answer}"),
        T("{question}\n\nGive only the answer.", "{answer}"),
        T("Come up with a quiz question to which the answer is \"{answer}\".", "{question}",
          inverted=True),
    ),
    metric="exact_match",
    description="TriviaQA rc.nocontext; answer.value is the target.",
)

DATASETS: tuple[DatasetSpec, ...] = (ARC, NATURAL_QUESTIONS, TRIVIA_QA)
