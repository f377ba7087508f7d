"""FLAN 2021 reading comprehension with commonsense: CosmosQA and ReCoRD.

Both are multiple choice with per-example options (`options_field="options"`).

Worked example (cosmos_qa):

    raw    {"context": "I missed the bus, so I walked.", "question": "Why did I walk?",
            "answer0": "I like walking.", "answer1": "The bus had left.", "answer2": "It rained.",
            "answer3": "None of the above choices.", "label": 1, "id": "x"}
    fields {"context": "I missed the bus, so I walked.", "question": "Why did I walk?",
            "options": ["I like walking.", "The bus had left.", "It rained.",
                        "None of the above choices."],
            "answer": "The bus had left."}

ReCoRD (super_glue/record): a news passage whose summary bullets are marked "@highlight\\n",
and a cloze query with "@placeholder" for a missing entity. The bullets become "- " lines, the
placeholder becomes "___", the options are the passage's entities (duplicates removed, order
kept), the answer is the first gold entity and `completed` is the query with it filled in (the
target of the inverted template):

    raw    {"passage": "Ann met Bo in Rome.\\n@highlight\\nAnn visits Rome",
            "query": "@placeholder was happy to see Ann.", "entities": ["Ann", "Bo", "Rome"],
            "answers": ["Bo"], "idx": {...}}
    fields {"passage": "Ann met Bo in Rome.\\n- Ann visits Rome",
            "query": "___ was happy to see Ann.", "options": ["Ann", "Bo", "Rome"], "answer": "Bo",
            "completed": "Bo was happy to see Ann."}

Rows without a gold answer (unlabeled test splits) are dropped.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flan_jax.data.templates.flan2021.common import first_text, pick_label
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template, TfdsSource

T = Template
CLUSTER = "reading_comprehension_commonsense"
BLANK = "___"


# ---------------------------------------------------------------------------------------------
# CosmosQA: everyday narratives, questions about causes, effects and likely facts.
def cosmos_qa_fields(ex: Mapping[str, Any]) -> Fields | None:
    options = [ex["answer0"], ex["answer1"], ex["answer2"], ex["answer3"]]
    answer = pick_label(options, ex["label"])
    if answer is None:
        return None
    return {"context": ex["context"], "question": ex["question"], "options": options,
            "answer": answer}


COSMOS_QA_TEMPLATES = (
    T("{context}\n\n{question}{options_}", "{answer}"),
    T("Read the story and answer the question.\n\nStory: {context}\nQuestion: {question}{options_}",
      "{answer}"),
    T("{context}\n\nUsing common sense, what is the best answer? {question}{options_}", "{answer}"),
    T("Context: {context}\nQ: {question}{options_}\nA:", "{answer}"),
    T("Here is what someone wrote online:\n\"{context}\"\n\n{question}{options_}", "{answer}"),
    T("{question}\n\nThink about this passage before answering: {context}{options_}", "{answer}"),
    T("Someone told me: {context}\n\nGiven that, pick the answer to: {question}{options_}",
      "{answer}"),
    T("Passage: {context}\n\nWhich answer fits the question \"{question}\" best?{options_}",
      "{answer}"),
    T("{context}\nBased on what you read, answer: {question}{options_}\nThe answer is:",
      "{answer}"),
    T("{context}\n\nWrite a question about this text whose correct answer is: {answer}",
      "{question}",
      inverted=True),
)


# ---------------------------------------------------------------------------------------------
# ReCoRD: fill the blank in a query about a news article with one of its entities.
def record_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = first_text(ex["answers"])
    options = list(dict.fromkeys(ex["entities"]))
    if answer is None or not options:
        return None
    passage = ex["passage"].replace("@highlight\n", "- ")
    return {"passage": passage, "query": ex["query"].replace("@placeholder", BLANK),
            "options": options, "answer": answer,
            "completed": ex["query"].replace("@placeholder", answer)}


RECORD_TEMPLATES = (
    T("{passage}\n\nWhich entity belongs in the blank? {query}{options_}", "{answer}"),
    T("Read the news story and fill in the blank.\n\n{passage}\n\nSentence: {query}{options_}",
      "{answer}"),
    T("Article:\n{passage}\n\nComplete this sentence about the article: {query}{options_}",
      "{answer}"),
    T("{query}\n\nWhat should replace ___ above? Use this article: {passage}{options_}",
      "{answer}"),
    T("Here is a news report.\n{passage}\n\nA follow-up sentence is missing a name or thing: "
      "\"{query}\" What goes in the gap?{options_}", "{answer}"),
    T("{passage}\n\nFill the blank with the right entity from the story.\n{query}{options_}\n"
      "Answer:", "{answer}"),
    T("Context: {passage}\nCloze: {query}{options_}", "{answer}"),
    T("Given the passage below, who or what is ___ in \"{query}\"?\n\n{passage}{options_}",
      "{answer}"),
    T("{passage}\n\nI wrote this summary line but left a blank: {query}\nWhat is missing?"
      "{options_}",
      "{answer}"),
    T("{passage}\n\nWrite one more sentence about this story that mentions {answer}.",
      "{completed}", inverted=True),
)

DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="cosmos_qa",
        cluster=CLUSTER,
        sources={"cosmos_qa": TfdsSource(
            "cosmos_qa", "1.0.0", {"train": "train", "validation": "validation"})},
        to_fields=cosmos_qa_fields,
        fields=("context", "question", "options", "answer"),
        templates=COSMOS_QA_TEMPLATES,
        options_field="options",
        description="Commonsense questions about everyday narratives (CosmosQA).",
    ),
    DatasetSpec(
        name="record",
        cluster=CLUSTER,
        sources={"record": TfdsSource(
            "super_glue/record", "1.0.2", {"train": "train", "validation": "validation"})},
        to_fields=record_fields,
        fields=("passage", "query", "options", "answer", "completed"),
        templates=RECORD_TEMPLATES,
        options_field="options",
        description="Cloze-style entity questions about news articles (SuperGLUE ReCoRD).",
    ),
)
