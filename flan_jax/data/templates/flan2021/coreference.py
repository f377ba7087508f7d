"""FLAN 2021 coreference cluster: Definite Pronoun Resolution (DPR), WinoGrande, WSC273.

All three ask which of two candidates a pronoun (or a blank) refers to; the candidates are the
per-example options (`options_field="options"`).

Worked example (definite_pronoun_resolution):

    raw    {"sentence": "The cat chased the mouse because it was hungry.", "pronoun": "it",
            "candidates": ["The cat", "the mouse"], "label": 0}
    fields {"sentence": "The cat chased the mouse because it was hungry.", "pronoun": "it",
            "options": ["The cat", "the mouse"], "answer": "The cat"}

WinoGrande uses its largest training size (TFDS split `train_xl`; the builder has no configs,
the five training sizes are splits) and its labeled validation split; the sentence keeps its
"_" blank. WSC273 has only a 273-row test split: the first 75% is used as train, the rest as
validation. Rows whose label does not pick a candidate (e.g. unlabeled test rows) are dropped.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flan_jax.data.templates.flan2021.common import pick_label
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template, TfdsSource

T = Template
CLUSTER = "coreference"


# ---------------------------------------------------------------------------------------------
# DPR: which candidate does the pronoun refer to?
def dpr_fields(ex: Mapping[str, Any]) -> Fields | None:
    options = list(ex["candidates"])
    answer = pick_label(options, ex["label"])
    if answer is None or len(options) < 2:
        return None
    return {"sentence": ex["sentence"], "pronoun": ex["pronoun"], "options": options,
            "answer": answer}


# Shared by DPR and WSC273 (same fields: sentence, pronoun, options, answer).
PRONOUN_TEMPLATES = (
    T("{sentence}\n\nWho or what does \"{pronoun}\" refer to in this sentence?{options_}",
      "{answer}"),
    T("Sentence: {sentence}\nPronoun: {pronoun}\nWhich candidate is the pronoun about?{options_}",
      "{answer}"),
    T("In \"{sentence}\", what is meant by \"{pronoun}\"?{options_}", "{answer}"),
    T("Resolve the pronoun.\n\n{sentence}\n\nThe word \"{pronoun}\" stands for:{options_}",
      "{answer}"),
    T("{sentence}\nHere, \"{pronoun}\" is most likely{options_}", "{answer}"),
    T("Read this: {sentence}\n\nIf we replaced \"{pronoun}\" with a noun phrase, which one keeps "
      "the meaning?{options_}", "{answer}"),
    T("Which does \"{pronoun}\" point to in the following sentence?\n{sentence}{options_}",
      "{answer}"),
    T("Coreference question. {sentence} -- who or what is \"{pronoun}\"?{options_}", "{answer}"),
    T("{sentence}\n\nA reader asks: in that sentence, what does the word \"{pronoun}\" refer "
      "to? Answer:{options_}",
      "{answer}"),
    T("{sentence}\n\nWhich pronoun in this sentence refers to {answer}?", "{pronoun}",
      inverted=True),
)


# ---------------------------------------------------------------------------------------------
# WinoGrande: pick the option that fills the "_" blank.
def winogrande_fields(ex: Mapping[str, Any]) -> Fields | None:
    options = [ex["option1"], ex["option2"]]
    answer = pick_label(options, ex["label"])  # label 0 -> option1, 1 -> option2
    if answer is None:
        return None
    return {"sentence": ex["sentence"], "options": options, "answer": answer}


WINOGRANDE_TEMPLATES = (
    T("{sentence}\n\nWhat goes in the blank (_)?{options_}", "{answer}"),
    T("Fill in the blank: {sentence}{options_}", "{answer}"),
    T("Which option best completes the sentence?\n\n{sentence}{options_}", "{answer}"),
    T("Sentence with a gap: {sentence}\nThe gap should be filled with:{options_}", "{answer}"),
    T("Use common sense to decide who or what the \"_\" refers to.\n{sentence}{options_}",
      "{answer}"),
    T("{sentence}\n\nReplace the underscore with the option that makes the most sense.{options_}",
      "{answer}"),
    T("Complete the following: {sentence}{options_}\nAnswer:", "{answer}"),
    T("In the sentence below, one word or phrase was removed and replaced by _.\n\n{sentence}\n\n"
      "What was it?{options_}", "{answer}"),
    T("Q: {sentence} -- what is _ ?{options_}\nA:", "{answer}"),
    T("Here is a tricky sentence: {sentence}\nWhich choice fits the blank?{options_}", "{answer}"),
)


# ---------------------------------------------------------------------------------------------
# WSC273: the Winograd Schema Challenge posed as a continuation, as FLAN poses it
# (flan/tasks.py `_process_wsc273`): the text up to the pronoun is the context and each option
# is a candidate followed by the rest of the text. Positions are byte offsets, as
# tf.strings.substr counts them.
def wsc273_fields(ex: Mapping[str, Any]) -> Fields | None:
    text = ex["text"].encode("utf-8")
    context = text[: int(ex["pronoun_start"])].decode("utf-8", "ignore").strip()
    rest = text[int(ex["pronoun_end"]):].decode("utf-8", "ignore").strip()
    options = [f"{ex['option1_normalized']} {rest}", f"{ex['option2_normalized']} {rest}"]
    answer = pick_label(options, ex["label"])  # label 0 -> option1, 1 -> option2
    if answer is None:
        return None
    return {"context": context, "options": options, "answer": answer}


WSC273_TEMPLATES = (
    T("{context}{options_}", "{answer}"),
    T("Continue the sentence.\n\n{context}{options_}", "{answer}"),
    T("{context}\n\nHow should this sentence go on?{options_}", "{answer}"),
    T("Which ending makes the most sense?\n\n{context}{options_}", "{answer}"),
    T("Finish this text so that it reads naturally: {context}{options_}", "{answer}"),
    T("Here is the start of a sentence: \"{context}\" What comes next?{options_}", "{answer}"),
    T("Pick the right way to complete this sentence.\n{context}{options_}", "{answer}"),
    T("{context} ...\n\nWhat is the rest of the sentence?{options_}", "{answer}"),
    T("Sentence start: {context}\nSentence end:{options_}", "{answer}"),
    T("Write the remainder of this sentence.\n\n{context}{options_}", "{answer}"),
)


_PRONOUN_FIELDS = ("sentence", "pronoun", "options", "answer")

DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="dpr",
        cluster=CLUSTER,
        sources={"dpr": TfdsSource(
            "definite_pronoun_resolution", "1.1.0", {"train": "train", "validation": "test"})},
        to_fields=dpr_fields,
        fields=_PRONOUN_FIELDS,
        templates=PRONOUN_TEMPLATES,
        options_field="options",
        description="Definite pronoun resolution (Rahman & Ng 2012); its test split is our "
        "validation.",
    ),
    DatasetSpec(
        name="winogrande",
        cluster=CLUSTER,
        sources={"winogrande": TfdsSource(
            "winogrande", "1.2.0", {"train": "train_xl", "validation": "validation"})},
        to_fields=winogrande_fields,
        fields=("sentence", "options", "answer"),
        templates=WINOGRANDE_TEMPLATES,
        options_field="options",
        description="Adversarial Winograd-style fill-in-the-blank (WinoGrande, XL training set).",
    ),
    DatasetSpec(
        name="wsc273",
        cluster=CLUSTER,
        sources={"wsc273": TfdsSource(
            "wsc273", "1.0.0", {"train": "test[:75%]", "validation": "test[75%:]"})},
        to_fields=wsc273_fields,
        fields=("context", "options", "answer"),
        templates=WSC273_TEMPLATES,
        options_field="options",
        description="Winograd Schema Challenge, 273 problems (test split divided 75/25), posed "
        "as choosing the sentence's continuation.",
    ),
)
