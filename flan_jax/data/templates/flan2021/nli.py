"""FLAN 2021 natural language inference cluster: ANLI, CB, MNLI, QNLI, RTE, SNLI, WNLI.

Every dataset maps to the fields (premise, hypothesis, answer), with answer one of the dataset's
fixed options, so the three-way datasets (ANLI, CB, MNLI, SNLI) share one template set and the
two-way ones (RTE, WNLI) another. QNLI asks whether a sentence answers a question and has its own.

Worked example (glue/mnli, label names entailment / neutral / contradiction):

    raw    {"premise": "A man plays a guitar.", "hypothesis": "A person makes music.",
            "label": 0, "idx": 7}
    fields {"premise": "A man plays a guitar.", "hypothesis": "A person makes music.",
            "answer": "yes"}

Rows with label -1 (the unlabeled GLUE / SuperGLUE test splits) are dropped.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flan_jax.data.templates.flan2021.common import YES_MAYBE_NO, YES_NO, pick_label
from flan_jax.data.templates.spec import DatasetSpec, FewShotTemplate, Fields, Template, TfdsSource

T = Template
_FIELDS = ("premise", "hypothesis", "answer")
_GLUE, _SUPER_GLUE = "2.0.0", "1.0.2"
_TRAIN_VAL = {"train": "train", "validation": "validation"}


def _nli(premise: str, hypothesis: str, label: int, label_to_option: tuple[str, ...]) -> Fields | None:
    answer = pick_label(label_to_option, label)
    if answer is None:
        return None
    return {"premise": premise, "hypothesis": hypothesis, "answer": answer}


# ---------------------------------------------------------------------------------------------
# Three-way NLI (yes / it is not possible to tell / no), shared by ANLI, CB, MNLI and SNLI.
THREE_WAY_TEMPLATES = (
    T("{premise}\n\nGiven the passage above, is it true that \"{hypothesis}\"?{options_}", "{answer}"),
    T("Premise: {premise}\nHypothesis: {hypothesis}\nDoes the premise entail the hypothesis?{options_}",
      "{answer}"),
    T("Read this: {premise}\n\nIs the following conclusion justified by it?\n{hypothesis}{options_}",
      "{answer}"),
    T("If \"{premise}\", does it follow that \"{hypothesis}\"?{options_}", "{answer}"),
    T("Statement A: {premise}\nStatement B: {hypothesis}\n\nAssuming A is accurate, must B be "
      "accurate as well?{options_}", "{answer}"),
    T("I was told: \"{premise}\" Would you say that means {hypothesis}{options_}", "{answer}"),
    T("Decide whether the claim is supported by the text.\n\nText: {premise}\nClaim: "
      "{hypothesis}{options_}", "{answer}"),
    T("{premise}\nQuestion: {hypothesis} Is that right?{options_}", "{answer}"),
    T("Here is a short text:\n{premise}\n\nBased only on that, is the sentence below correct?\n"
      "\"{hypothesis}\"{options_}\nAnswer:", "{answer}"),
    T("Premise: {premise}\n\nWrite a hypothesis so that the answer to \"Does the premise entail "
      "it?\" is \"{answer}\".", "{hypothesis}", inverted=True),
)

# Two-way entailment (yes / no), shared by RTE and WNLI.
TWO_WAY_TEMPLATES = (
    T("{premise}\n\nDoes this mean that \"{hypothesis}\" is true?{options_}", "{answer}"),
    T("Premise: {premise}\nHypothesis: {hypothesis}\nIs the hypothesis entailed?{options_}", "{answer}"),
    T("Given the text \"{premise}\", can we be sure that {hypothesis}{options_}", "{answer}"),
    T("Consider this passage.\n{premise}\n\nDoes the sentence \"{hypothesis}\" follow from it?"
      "{options_}", "{answer}"),
    T("Text: {premise}\nClaim: {hypothesis}\nIs the claim backed up by the text?{options_}", "{answer}"),
    T("{premise} Based on that, {hypothesis} Yes or no?{options_}", "{answer}"),
    T("Read the first sentence, then judge the second one.\n\nFirst: {premise}\nSecond: "
      "{hypothesis}\n\nIf the first is true, is the second true too?{options_}", "{answer}"),
    T("My friend said: \"{premise}\"\nSo is it correct to say that \"{hypothesis}\"?{options_}",
      "{answer}"),
    T("Is \"{hypothesis}\" entailed by \"{premise}\"?{options_}", "{answer}"),
    T("Text: {premise}\n\nWrite a sentence such that the answer to \"Is it entailed by the text?\" "
      "is {answer}.", "{hypothesis}", inverted=True),
)


# ---------------------------------------------------------------------------------------------
# ANLI: three adversarial rounds, one seqio task per round, labels e / n / c.
def anli_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _nli(ex["context"], ex["hypothesis"], ex["label"], YES_MAYBE_NO)


ANLI = DatasetSpec(
    name="anli",
    cluster="nli",
    sources={
        f"anli_{r}": TfdsSource(f"anli/{r}", "0.1.0", {"train": "train", "validation": "validation",
                                                        "test": "test"})
        for r in ("r1", "r2", "r3")
    },
    to_fields=anli_fields,
    fields=_FIELDS,
    templates=THREE_WAY_TEMPLATES,
    options=YES_MAYBE_NO,
    description="Adversarial NLI (rounds 1-3); context -> premise.",
)


# ---------------------------------------------------------------------------------------------
# CB (CommitmentBank): label names entailment / contradiction / neutral (note the order).
def cb_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _nli(ex["premise"], ex["hypothesis"], ex["label"],
                ("yes", "no", "it is not possible to tell"))


CB = DatasetSpec(
    name="cb",
    cluster="nli",
    sources={"cb": TfdsSource("super_glue/cb", _SUPER_GLUE, _TRAIN_VAL)},
    to_fields=cb_fields,
    fields=_FIELDS,
    templates=THREE_WAY_TEMPLATES,
    options=YES_MAYBE_NO,
)


# ---------------------------------------------------------------------------------------------
# MNLI and SNLI: label names entailment / neutral / contradiction.
def mnli_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _nli(ex["premise"], ex["hypothesis"], ex["label"], YES_MAYBE_NO)


MNLI = DatasetSpec(
    name="mnli",
    cluster="nli",
    sources={"mnli": TfdsSource("glue/mnli", _GLUE,
                                {"train": "train", "validation": "validation_matched"})},
    to_fields=mnli_fields,
    fields=_FIELDS,
    templates=THREE_WAY_TEMPLATES,
    options=YES_MAYBE_NO,
    description="MultiNLI; evaluated on the matched validation split.",
)

SNLI = DatasetSpec(
    name="snli",
    cluster="nli",
    sources={"snli": TfdsSource("snli", "1.1.0", {"train": "train", "validation": "validation",
                                                  "test": "test"})},
    to_fields=mnli_fields,  # same feature keys and label order as MNLI
    fields=_FIELDS,
    templates=THREE_WAY_TEMPLATES,
    options=YES_MAYBE_NO,
)


# ---------------------------------------------------------------------------------------------
# RTE (entailment / not_entailment) and WNLI (not_entailment / entailment: reversed order).
def rte_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _nli(ex["premise"], ex["hypothesis"], ex["label"], YES_NO)


# RTE's own few-shot templates: shorter than the zero-shot ones, our wording, each slot with the
# framing (prefixes, delimiter, separator, template-mix membership) that flan/v2/templates.py
# FEWSHOT_PATTERNS["rte"] gives the same slot; slot 4 turns the task around there too.
FS = FewShotTemplate
RTE_FEWSHOT_TEMPLATES = (
    FS("Text: {premise}\n{hypothesis}{options_}", "{answer}", "Problem: ", "A: ", "\n", "\n\n",
       in_template_mix=False),
    FS("{premise}\n{hypothesis}{options_}", "{answer}", "Q: ", "A: ", "\n\n", "\n\n\n"),
    FS("{premise}\nDoes it follow that: {hypothesis}{options_}", "{answer}", "", "", "\n\n",
       "\n\n\n"),
    FS("{premise}\n\n{hypothesis}{options_}", "{answer}", "Question: ", "Answer: ", "\n", "\n"),
    FS("Text: {premise}\n\nWrite a sentence the text supports.", "Sentence: {hypothesis}",
       "Question: ", "Answer: ", "\n****\n", "\n\n\n", in_template_mix=False, inverted=True),
    FS("Is the sentence supported by the text below?\n{hypothesis}\n\n{premise}{options_}",
       "{answer}", "", "", "\n", "\n"),
    FS("{premise}{options_}\nClaim: {hypothesis}", "{answer}", "", "", "\n", "\n\n"),
    FS("{premise}\nTrue or not: {hypothesis}{options_}", "{answer}", "", "A: ", "\n\n",
       "\n\n\n"),
    FS("{premise}\nDoes that make this true?\n{hypothesis}{options_}", "{answer}", "Question:\n",
       "Answer:\n", "\n\n", "\n\n\n"),
    FS("{premise}\n\nFrom that paragraph, can we conclude the following?\n{hypothesis}{options_}",
       "{answer}", "Problem: ", "Answer: ", "\n****\n", "\n\n\n"),
)

RTE = DatasetSpec(
    name="rte",
    cluster="nli",
    sources={"rte": TfdsSource("super_glue/rte", _SUPER_GLUE, _TRAIN_VAL)},
    to_fields=rte_fields,
    fields=_FIELDS,
    templates=TWO_WAY_TEMPLATES,
    options=YES_NO,
    fewshot_templates=RTE_FEWSHOT_TEMPLATES,
)


def wnli_fields(ex: Mapping[str, Any]) -> Fields | None:
    return _nli(ex["sentence1"], ex["sentence2"], ex["label"], ("no", "yes"))


WNLI = DatasetSpec(
    name="wnli",
    cluster="nli",
    sources={"wnli": TfdsSource("glue/wnli", _GLUE, _TRAIN_VAL)},
    to_fields=wnli_fields,
    fields=_FIELDS,
    templates=TWO_WAY_TEMPLATES,
    options=YES_NO,
    description="Winograd NLI; sentence1 -> premise, sentence2 -> hypothesis.",
)


# ---------------------------------------------------------------------------------------------
# QNLI: does the sentence contain the answer to the question? (entailment / not_entailment)
def qnli_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = pick_label(YES_NO, ex["label"])
    if answer is None:
        return None
    return {"question": ex["question"], "sentence": ex["sentence"], "answer": answer}


QNLI = DatasetSpec(
    name="qnli",
    cluster="nli",
    sources={"qnli": TfdsSource("glue/qnli", _GLUE, _TRAIN_VAL)},
    to_fields=qnli_fields,
    fields=("question", "sentence", "answer"),
    templates=(
        T("Is the question \"{question}\" answered by the sentence \"{sentence}\"?{options_}",
          "{answer}"),
        T("Question: {question}\nSentence: {sentence}\nDoes the sentence provide what the question "
          "asks for?{options_}", "{answer}"),
        T("{question}\n\nIs \"{sentence}\" a good answer to that?{options_}", "{answer}"),
        T("Someone asked: {question}\nThe reply was: {sentence}\nDid the reply actually answer the "
          "question?{options_}", "{answer}"),
        T("Sentence: {sentence}\n\nCan the question \"{question}\" be answered from this sentence "
          "alone?{options_}", "{answer}"),
        T("I want to know: {question} Does this help? \"{sentence}\"{options_}", "{answer}"),
        T("Check whether the passage answers the query.\nQuery: {question}\nPassage: "
          "{sentence}{options_}", "{answer}"),
        T("{sentence}\n\nAfter reading the sentence above, is the answer to \"{question}\" in "
          "it?{options_}", "{answer}"),
        T("Q: {question}\nCandidate answer sentence: {sentence}\nRelevant?{options_}", "{answer}"),
        T("Here is a sentence: {sentence}\n\nWrite a question such that the answer to \"Does the "
          "sentence answer it?\" is {answer}.", "{question}", inverted=True),
    ),
    options=YES_NO,
    description="Question NLI; yes means the sentence answers the question.",
)

DATASETS: tuple[DatasetSpec, ...] = (ANLI, CB, MNLI, QNLI, RTE, SNLI, WNLI)
