"""FLAN 2021 paraphrase cluster: MRPC, QQP, PAWS (yes / no) and STS-B (similarity 0-5).

Worked example (glue/mrpc, label names not_equivalent / equivalent):

    raw    {"sentence1": "He left at noon.", "sentence2": "At midday he departed.",
            "label": 1, "idx": 4}
    fields {"sentence1": "He left at noon.", "sentence2": "At midday he departed.",
            "answer": "yes"}

STS-B's label is a float similarity in [0, 5]. We render it as a class: the score rounded half
up to an integer, as a string, with options "0" ... "5" (so it is scored like the other
classification tasks):

    raw    {"sentence1": "A dog runs.", "sentence2": "A dog is running.", "label": 4.6, "idx": 0}
    fields {"sentence1": "A dog runs.", "sentence2": "A dog is running.", "answer": "5"}

Unlabeled rows (label -1, GLUE test) are dropped.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from flan_jax.data.templates.flan2021.common import YES_NO, pick_label
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template, TfdsSource

T = Template
_PAIR_FIELDS = ("sentence1", "sentence2", "answer")
_GLUE = "2.0.0"
_TRAIN_VAL = {"train": "train", "validation": "validation"}
# Both GLUE (not_equivalent / equivalent, not_duplicate / duplicate) and PAWS
# (different_meaning / paraphrase) put the negative class first.
_NO_YES = ("no", "yes")


def _pair(first: str, second: str, label: Any) -> Fields | None:
    answer = pick_label(_NO_YES, label)
    return None if answer is None else {"sentence1": first, "sentence2": second, "answer": answer}


# ---------------------------------------------------------------------------------------------
# MRPC: news sentence pairs.
def mrpc_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _pair(ex["sentence1"], ex["sentence2"], ex["label"])


MRPC = DatasetSpec(
    name="mrpc",
    cluster="paraphrase",
    sources={"mrpc": TfdsSource("glue/mrpc", _GLUE, _TRAIN_VAL)},
    to_fields=mrpc_fields,
    fields=_PAIR_FIELDS,
    templates=(
        T("\"{sentence1}\"\n\"{sentence2}\"\n\nAre these two sentences conveying the same idea?{options_}",
          "{answer}"),
        T("Sentence 1: {sentence1}\nSentence 2: {sentence2}\nAre they paraphrases of each other?"
          "{options_}", "{answer}"),
        T("Is the second sentence a rewording of the first?\n\n{sentence1}\n{sentence2}{options_}",
          "{answer}"),
        T("Compare these news sentences and say whether they are equivalent in meaning.\nA: "
          "{sentence1}\nB: {sentence2}{options_}", "{answer}"),
        T("{sentence1}\n\nDoes the sentence above mean the same as \"{sentence2}\"?{options_}",
          "{answer}"),
        T("Two reporters wrote: \"{sentence1}\" and \"{sentence2}\" Did they report the same "
          "fact?{options_}", "{answer}"),
        T("Same meaning?{options_}\n\n1) {sentence1}\n2) {sentence2}", "{answer}"),
        T("Here are two sentences. First: {sentence1} Second: {sentence2} Would you call them "
          "semantically equivalent?{options_}", "{answer}"),
        T("{sentence1} / {sentence2}\nParaphrase?{options_}", "{answer}"),
        T("Sentence: {sentence1}\n\nWrite another sentence so that the answer to \"Do the two "
          "sentences mean the same?\" is {answer}.", "{sentence2}", inverted=True),
    ),
    options=YES_NO,
)


# ---------------------------------------------------------------------------------------------
# QQP: are two Quora questions duplicates?
def qqp_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _pair(ex["question1"], ex["question2"], ex["label"])


QQP = DatasetSpec(
    name="qqp",
    cluster="paraphrase",
    sources={"qqp": TfdsSource("glue/qqp", _GLUE, _TRAIN_VAL)},
    to_fields=qqp_fields,
    fields=_PAIR_FIELDS,
    templates=(
        T("{sentence1}\n{sentence2}\n\nDo the two questions above have the same intent?{options_}",
          "{answer}"),
        T("Question A: {sentence1}\nQuestion B: {sentence2}\nWould one answer serve both?"
          "{options_}", "{answer}"),
        T("On a Q&A site, should \"{sentence2}\" be merged into \"{sentence1}\" as a duplicate?"
          "{options_}", "{answer}"),
        T("Are the following questions duplicates?\n1. {sentence1}\n2. {sentence2}{options_}",
          "{answer}"),
        T("I want to know: {sentence1} My friend wants to know: {sentence2} Do we want to know the "
          "same thing?{options_}", "{answer}"),
        T("Decide whether the questions below duplicate each other.{options_}\n\nFirst: {sentence1}\n"
          "Second: {sentence2}", "{answer}"),
        T("\"{sentence1}\" vs. \"{sentence2}\" -- same question?{options_}", "{answer}"),
        T("{sentence1}\n\nIs that the same question as this one: {sentence2}{options_}", "{answer}"),
        T("Someone asked \"{sentence1}\" and someone else asked \"{sentence2}\". Are they "
          "duplicates?{options_}", "{answer}"),
        T("Question: {sentence1}\n\nWrite another question such that the answer to \"Are the two "
          "questions duplicates?\" is {answer}.", "{sentence2}", inverted=True),
    ),
    options=YES_NO,
    description="Quora Question Pairs (question1 -> sentence1, question2 -> sentence2).",
)


# ---------------------------------------------------------------------------------------------
# PAWS (Wikipedia, labeled_final, tokenized text): adversarial word-swap pairs.
def paws_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _pair(ex["sentence1"], ex["sentence2"], ex["label"])


PAWS = DatasetSpec(
    name="paws",
    cluster="paraphrase",
    sources={"paws": TfdsSource("paws_wiki/labeled_final_tokenized", "1.1.0",
                                {"train": "train", "validation": "validation", "test": "test"})},
    to_fields=paws_fields,
    fields=_PAIR_FIELDS,
    templates=(
        T("{sentence1}\n{sentence2}\n\nDo these sentences have the same meaning, even though "
          "their words overlap?{options_}", "{answer}"),
        T("Sentence one: {sentence1}\nSentence two: {sentence2}\nIs sentence two a paraphrase of "
          "sentence one?{options_}", "{answer}"),
        T("Word order can change meaning. Do these two sentences mean the same?\n\n{sentence1}\n"
          "{sentence2}{options_}", "{answer}"),
        T("Does \"{sentence1}\" express the same information as \"{sentence2}\"?{options_}",
          "{answer}"),
        T("Read carefully:\nA) {sentence1}\nB) {sentence2}\nAre A and B equivalent?{options_}",
          "{answer}"),
        T("{sentence1}\n\nIs the following a faithful paraphrase of that sentence?\n{sentence2}"
          "{options_}", "{answer}"),
        T("Paraphrase check.{options_}\n\n{sentence1}\n{sentence2}", "{answer}"),
        T("If I say \"{sentence1}\", have I also said \"{sentence2}\"?{options_}", "{answer}"),
        T("Text 1: {sentence1}\nText 2: {sentence2}\nSame meaning (yes/no)?{options_}", "{answer}"),
        T("{sentence1}\n\nRearrange or reword this sentence so that the answer to \"Is it a "
          "paraphrase?\" is {answer}.", "{sentence2}", inverted=True),
    ),
    options=YES_NO,
    description="PAWS-Wiki labeled_final (tokenized text as TFDS gives it).",
)


# ---------------------------------------------------------------------------------------------
# STS-B: similarity 0-5 rendered as a rounded integer class.
STSB_OPTIONS = ("0", "1", "2", "3", "4", "5")


def stsb_fields(ex: Mapping[str, Any]) -> Fields | None:
    score = float(ex["label"])
    if not 0.0 <= score <= 5.0:  # test rows carry -1
        return None
    answer = str(math.floor(score + 0.5))  # round half up: 2.5 -> "3", 4.4 -> "4"
    return {"sentence1": ex["sentence1"], "sentence2": ex["sentence2"], "answer": answer}


STSB = DatasetSpec(
    name="stsb",
    cluster="paraphrase",
    sources={"stsb": TfdsSource("glue/stsb", _GLUE, _TRAIN_VAL)},
    to_fields=stsb_fields,
    fields=_PAIR_FIELDS,
    templates=(
        T("{sentence1}\n{sentence2}\n\nOn a scale from 0 (unrelated) to 5 (same meaning), how "
          "similar are these sentences?{options_}", "{answer}"),
        T("Sentence A: {sentence1}\nSentence B: {sentence2}\nRate their semantic similarity from "
          "0 to 5.{options_}", "{answer}"),
        T("How close in meaning are \"{sentence1}\" and \"{sentence2}\"? Give a score between 0 "
          "and 5.{options_}", "{answer}"),
        T("Score the similarity (0 = nothing in common, 5 = equivalent).{options_}\n\n1: "
          "{sentence1}\n2: {sentence2}", "{answer}"),
        T("{sentence1}\n\nHow much does the following sentence overlap in meaning with the one "
          "above, from 0 to 5?\n{sentence2}{options_}", "{answer}"),
        T("I have two sentences: \"{sentence1}\" and \"{sentence2}\". If 5 means identical meaning "
          "and 0 means completely different, what number fits?{options_}", "{answer}"),
        T("First: {sentence1}\nSecond: {sentence2}\nSimilarity (0-5):{options_}", "{answer}"),
        T("Grade how similar the two texts are, using an integer from zero to five.\nText 1: "
          "{sentence1}\nText 2: {sentence2}{options_}", "{answer}"),
        T("Similarity of \"{sentence1}\" to \"{sentence2}\" on a 0-5 scale?{options_}", "{answer}"),
        T("Sentence: {sentence1}\n\nWrite a sentence whose similarity to it is {answer} on a scale "
          "from 0 (unrelated) to 5 (same meaning).", "{sentence2}", inverted=True),
    ),
    options=STSB_OPTIONS,
    description="STS-B; the float score is rounded half up to an integer class 0-5.",
)

DATASETS: tuple[DatasetSpec, ...] = (MRPC, QQP, PAWS, STSB)
