"""FLAN 2021 reading comprehension cluster: BoolQ, DROP, MultiRC, OpenBookQA, SQuAD (v1.1 + v2.0).

Each dataset reads a passage and answers a question about it. Worked example (super_glue/boolq):

    raw    {"passage": "Ice floats on water because it is less dense.",
            "question": "does ice float on water", "label": 1, "idx": 3}
    fields {"passage": "Ice floats on water because it is less dense.",
            "question": "Does ice float on water?", "answer": "yes"}

SQuAD has two seqio tasks sharing one template set: `squad_v1` (squad/v1.1) and `squad_v2`
(squad/v2.0). A v2 question marked `is_impossible` gets the fixed answer text
`UNANSWERABLE` ("unanswerable"), which the templates mention so the model can learn it.
Rows with no usable answer (unlabeled test splits, empty answer lists) are dropped.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flan_jax.data.templates.flan2021.common import YES_NO, first_text, pick_label
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template, TfdsSource

T = Template
CLUSTER = "reading_comprehension"
_SUPER_GLUE = "1.0.2"
_TRAIN_VAL = {"train": "train", "validation": "validation"}
# SQuAD v2 questions with no answer in the passage get this target.
UNANSWERABLE = "unanswerable"
# Label index -> option text for binary SuperGLUE labels (0 = False, 1 = True).
_FALSE_TRUE = ("no", "yes")


def _as_question(text: str) -> str:
    """BoolQ questions are lower-case without "?": "is it cold" -> "Is it cold?"."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith("?") else text + "?"


# ---------------------------------------------------------------------------------------------
# BoolQ: yes/no questions about a Wikipedia passage.
def bool_q_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = pick_label(_FALSE_TRUE, ex["label"])
    if answer is None:
        return None
    return {"passage": ex["passage"], "question": _as_question(ex["question"]), "answer": answer}


BOOL_Q_TEMPLATES = (
    T("{passage}\n\n{question}{options_}", "{answer}"),
    T("Read the passage and answer yes or no.\n\nPassage: {passage}\nQuestion: {question}"
      "{options_}",
      "{answer}"),
    T("Based on the text below, answer this: {question}\n\n{passage}{options_}", "{answer}"),
    T("Here is an excerpt from an encyclopedia:\n{passage}\n\nUsing only the excerpt, answer: "
      "{question}{options_}", "{answer}"),
    T("Q: {question}\nContext: {passage}{options_}\nA:", "{answer}"),
    T("{passage}\n\nI wonder: {question} Can you tell from what you just read?{options_}",
      "{answer}"),
    T("Passage: {passage}\n\nTrue or false, in yes/no form: {question}{options_}", "{answer}"),
    T("Does the following text support a \"yes\" to the question \"{question}\"?\n\n{passage}"
      "{options_}",
      "{answer}"),
    T("Answer the question about the article below.\n{question}\n\nArticle: {passage}{options_}",
      "{answer}"),
    T("{passage}\n\nWrite a yes/no question about this passage whose answer is \"{answer}\".",
      "{question}", inverted=True),
)


# ---------------------------------------------------------------------------------------------
# DROP: discrete reasoning (counting, arithmetic, dates) over a passage; free-form answers.
def drop_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = first_text([ex["answer"], *ex["validated_answers"]])
    if answer is None:
        return None
    return {"passage": ex["passage"], "question": ex["question"], "answer": answer.strip()}


DROP_TEMPLATES = (
    T("{passage}\n\nAnswer this question: {question}", "{answer}"),
    T("Read the text and answer the question, which may need counting or arithmetic.\n\n"
      "{passage}\n\nQuestion: {question}", "{answer}"),
    T("Passage: {passage}\nQuestion: {question}\nAnswer:", "{answer}"),
    T("{question}\n\nWork it out from this article:\n{passage}", "{answer}"),
    T("Here is a news or history passage.\n{passage}\n\nGiven the passage, answer: {question}",
      "{answer}"),
    T("Context:\n{passage}\n\nQ: {question}\nGive a short answer (a number, date or phrase).",
      "{answer}"),
    T("Use the facts below to answer \"{question}\"\n\n{passage}", "{answer}"),
    T("{passage}\n\nBased on the above, what is the answer to: {question}", "{answer}"),
    T("I have a question about this text: {question}\n\nText: {passage}", "{answer}"),
    T("{passage}\n\nWrite a question about the passage whose answer is \"{answer}\".", "{question}",
      inverted=True),
)


# ---------------------------------------------------------------------------------------------
# MultiRC: is a candidate answer to a question about a paragraph correct?
def multirc_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = pick_label(_FALSE_TRUE, ex["label"])
    if answer is None:
        return None
    return {"paragraph": ex["paragraph"], "question": ex["question"], "response": ex["answer"],
            "answer": answer}


MULTIRC_TEMPLATES = (
    T("{paragraph}\n\nQuestion: \"{question}\"\nResponse: \"{response}\"\n\nIs the response "
      "correct?{options_}", "{answer}"),
    T("Read the paragraph, then judge the proposed answer.\n\n{paragraph}\n\n{question}\nProposed "
      "answer: {response}{options_}", "{answer}"),
    T("{paragraph}\n\nSomeone asked \"{question}\" and was told \"{response}\". Was that right?"
      "{options_}", "{answer}"),
    T("Paragraph: {paragraph}\nQ: {question}\nA: {response}\nDoes the paragraph back up this "
      "answer?"
      "{options_}", "{answer}"),
    T("Given the text below, is \"{response}\" a correct answer to \"{question}\"?\n\n{paragraph}"
      "{options_}", "{answer}"),
    T("{paragraph}\n\nAfter reading this, a student answered the question \"{question}\" with "
      "\"{response}\". Should the teacher mark it correct?{options_}", "{answer}"),
    T("Check the answer against the story.\nStory: {paragraph}\nQuestion: {question}\nAnswer: "
      "{response}{options_}", "{answer}"),
    T("{question}\n\nIs \"{response}\" a valid answer, according to this passage?\n{paragraph}"
      "{options_}", "{answer}"),
    T("Text: {paragraph}\n\nQuestion: {question}\nCandidate: {response}\nCorrect?{options_}",
      "{answer}"),
    T("{paragraph}\n\nQuestion: {question}\nWrite a candidate answer that a grader would mark "
      "\"{answer}\" (yes = correct, no = wrong).", "{response}", inverted=True),
)


# ---------------------------------------------------------------------------------------------
# OpenBookQA: 4-way science multiple choice; `fact` is the core fact the question relies on and
# every non-inverted template shows it (FLAN's openbookqa templates all give the fact).
def openbookqa_fields(ex: Mapping[str, Any]) -> Fields | None:
    q = ex["question"]
    options = [q["choice_A"], q["choice_B"], q["choice_C"], q["choice_D"]]
    answer = pick_label(options, ex["answerKey"])
    if answer is None:
        return None
    return {"fact": ex["fact1"], "question": q["stem"], "options": options, "answer": answer}


OPENBOOKQA_TEMPLATES = (
    T("{fact}\n\n{question}{options_}", "{answer}"),
    T("Use this fact to answer the question: {fact}\n\nQuestion: {question}{options_}", "{answer}"),
    T("Science question (hint: {fact}): {question}{options_}", "{answer}"),
    T("Given that {fact}, complete the statement. {question}{options_}\nAnswer:", "{answer}"),
    T("Knowing that \"{fact}\", how would you answer the following?\n{question}{options_}",
      "{answer}"),
    T("Background: {fact}\nQ: {question}{options_}\nA:", "{answer}"),
    T("Pick the best answer to this elementary science question. Remember: {fact}.\n\n"
      "{question}{options_}", "{answer}"),
    T("Fact: {fact}\nQuestion: {question}\nWhich option is right?{options_}", "{answer}"),
    T("{question}\n\nKeeping in mind that {fact}, choose the correct ending.{options_}",
      "{answer}"),
    T("Fact: {fact}\n\nWrite a science question, answerable with this fact, whose answer is "
      "\"{answer}\".", "{question}", inverted=True),
)


# ---------------------------------------------------------------------------------------------
# SQuAD v1.1 / v2.0: extractive QA over Wikipedia paragraphs. Titles use underscores in TFDS
# ("University_of_Notre_Dame"), shown with spaces.
def squad_fields(ex: Mapping[str, Any]) -> Fields | None:
    if ex.get("is_impossible", False):
        answer = UNANSWERABLE
    else:
        answer = first_text(ex["answers"]["text"])
        if answer is None:
            return None
    return {"title": ex["title"].replace("_", " "), "context": ex["context"],
            "question": ex["question"], "answer": answer}


SQUAD_TEMPLATES = (
    T("{context}\n\n{question} (If the passage does not say, answer \"unanswerable\".)",
      "{answer}"),
    T("Read this passage from the article \"{title}\" and answer the question.\n\n{context}\n\n"
      "Question: {question}", "{answer}"),
    T("Context: {context}\nQuestion: {question}\nAnswer (copy a span from the context, or say "
      "unanswerable):", "{answer}"),
    T("{question}\n\nThe answer, if there is one, is in this text:\n{context}", "{answer}"),
    T("Here is a paragraph about {title}.\n{context}\n\nAnswer from the paragraph: {question}",
      "{answer}"),
    T("Answer using words from the passage.\n\nPassage: {context}\n\nQ: {question}", "{answer}"),
    T("{context}\n\nGiven the text above, what is the answer to \"{question}\"? Reply "
      "\"unanswerable\" if it cannot be found.", "{answer}"),
    T("Article: {title}\n\n{context}\n\nQuestion about the article: {question}", "{answer}"),
    T("I'm studying for a quiz on {title}. {question}\n\nMy notes say: {context}", "{answer}"),
    T("{context}\n\nWhat is the title of the encyclopedia article this paragraph comes from?",
      "{title}", inverted=True),
)

_SQUAD = "3.0.0"

DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="bool_q",
        cluster=CLUSTER,
        sources={"bool_q": TfdsSource("super_glue/boolq", _SUPER_GLUE, _TRAIN_VAL)},
        to_fields=bool_q_fields,
        fields=("passage", "question", "answer"),
        templates=BOOL_Q_TEMPLATES,
        options=YES_NO,
        description="Yes/no questions about Wikipedia passages (SuperGLUE BoolQ).",
    ),
    DatasetSpec(
        name="drop",
        cluster=CLUSTER,
        sources={"drop": TfdsSource("drop", "2.0.0", {"train": "train", "validation": "dev"})},
        to_fields=drop_fields,
        fields=("passage", "question", "answer"),
        templates=DROP_TEMPLATES,
        metric="f1",
        description="Questions needing discrete reasoning over paragraphs (DROP).",
    ),
    DatasetSpec(
        name="multirc",
        cluster=CLUSTER,
        sources={"multirc": TfdsSource("super_glue/multirc", _SUPER_GLUE, _TRAIN_VAL)},
        to_fields=multirc_fields,
        fields=("paragraph", "question", "response", "answer"),
        templates=MULTIRC_TEMPLATES,
        options=YES_NO,
        description="Is this candidate answer to a question about a paragraph correct (MultiRC)?",
    ),
    DatasetSpec(
        name="openbookqa",
        cluster=CLUSTER,
        sources={"openbookqa": TfdsSource(
            "openbookqa", "0.1.0", {"train": "train", "validation": "validation", "test": "test"})},
        to_fields=openbookqa_fields,
        fields=("fact", "question", "options", "answer"),
        templates=OPENBOOKQA_TEMPLATES,
        options_field="options",
        description="Elementary science multiple choice with a supporting fact (OpenBookQA).",
    ),
    DatasetSpec(
        name="squad",
        cluster=CLUSTER,
        sources={
            "squad_v1": TfdsSource("squad/v1.1", _SQUAD, _TRAIN_VAL),
            "squad_v2": TfdsSource("squad/v2.0", _SQUAD, _TRAIN_VAL),
        },
        to_fields=squad_fields,
        fields=("title", "context", "question", "answer"),
        templates=SQUAD_TEMPLATES,
        metric="f1",
        description=f"Extractive QA (SQuAD v1.1 and v2.0; v2 no-answer target: {UNANSWERABLE!r}).",
    ),
)
