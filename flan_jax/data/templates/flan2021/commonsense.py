"""FLAN 2021 commonsense cluster: COPA, HellaSwag, PIQA, StoryCloze (all multiple choice).

Each example carries its own answer choices in the `options` field; `answer` is the correct one.

Worked example (super_glue/copa, label 1 = choice2):

    raw    {"premise": "The ground was wet.", "question": "cause", "choice1": "The sun shone.",
            "choice2": "It rained.", "label": 1, "idx": 3}
    fields {"premise": "The ground was wet.", "question": "cause",
            "options": ["The sun shone.", "It rained."], "answer": "It rained."}

Rows whose label does not point at a choice (test splits: -1) are dropped.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flan_jax.data.templates.flan2021.common import pick_label
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template, TfdsSource

T = Template


# ---------------------------------------------------------------------------------------------
# COPA: choose the more plausible cause or effect of a premise.
def copa_fields(ex: Mapping[str, Any]) -> Fields | None:
    options = [ex["choice1"], ex["choice2"]]
    answer = pick_label(options, ex["label"])
    if answer is None:
        return None
    return {"premise": ex["premise"], "question": ex["question"], "options": options,
            "answer": answer}


COPA = DatasetSpec(
    name="copa",
    cluster="commonsense",
    sources={"copa": TfdsSource("super_glue/copa", "1.0.2",
                                {"train": "train", "validation": "validation"})},
    to_fields=copa_fields,
    fields=("premise", "question", "options", "answer"),
    templates=(
        T("{premise}\n\nWhat is the most likely {question} of this?{options_}", "{answer}"),
        T("Premise: {premise}\nWhich alternative is the more plausible {question}?{options_}",
          "{answer}"),
        T("Pick the {question}.\n\n{premise}{options_}", "{answer}"),
        T("Here is something that happened: \"{premise}\" What do you think was its "
          "{question}?{options_}", "{answer}"),
        T("Think about cause and effect. {premise} We are looking for the {question}.{options_}\n"
          "Answer:", "{answer}"),
        T("Event: {premise}\nAsked for: the {question}\nBest choice?{options_}", "{answer}"),
        T("Choose the option that is the better {question} for this sentence: {premise}{options_}",
          "{answer}"),
        T("My friend told me \"{premise}\" I wondered about the {question}. Which one makes more "
          "sense?{options_}", "{answer}"),
        T("{premise}\nIdentify the {question}.{options_}", "{answer}"),
        T("Describe an event whose {question} could be: \"{answer}\"", "{premise}", inverted=True),
    ),
    options_field="options",
    description="Choice of Plausible Alternatives; question is 'cause' or 'effect'.",
)


# ---------------------------------------------------------------------------------------------
# HellaSwag: pick the most sensible continuation of an activity description.
def hellaswag_fields(ex: Mapping[str, Any]) -> Fields | None:
    options = list(ex["endings"])
    answer = pick_label(options, ex["label"])
    if answer is None:
        return None
    return {"context": ex["context"], "activity": ex["activity_label"], "options": options,
            "answer": answer}


HELLASWAG = DatasetSpec(
    name="hellaswag",
    cluster="commonsense",
    sources={"hellaswag": TfdsSource("hellaswag", "1.1.0",
                                     {"train": "train", "validation": "validation"})},
    to_fields=hellaswag_fields,
    fields=("context", "activity", "options", "answer"),
    templates=(
        T("Predict the next part.\n\n{context}{options_}", "{answer}"),
        T("{context}\n\nHow does this most likely continue?{options_}", "{answer}"),
        T("Topic: {activity}\n{context}...\nChoose the best ending.{options_}", "{answer}"),
        T("Finish the description in the most sensible way.\n\n{context}{options_}", "{answer}"),
        T("A text about \"{activity}\" starts like this: {context}\nWhich continuation fits?"
          "{options_}", "{answer}"),
        T("Complete: {context}{options_}", "{answer}"),
        T("I'm reading instructions on {activity}. So far: \"{context}\" What comes next?"
          "{options_}", "{answer}"),
        T("{context}{options_}\n\nWhich of these is the natural next sentence?", "{answer}"),
        T("Continue the passage.\nPassage: {context}{options_}\nContinuation:", "{answer}"),
        T("Write the opening of a text about {activity} that would naturally be followed by: "
          "\"{answer}\"", "{context}", inverted=True),
    ),
    options_field="options",
    description="HellaSwag sentence completion (4 endings).",
)


# ---------------------------------------------------------------------------------------------
# PIQA: which of two solutions achieves a physical goal.
def piqa_fields(ex: Mapping[str, Any]) -> Fields | None:
    options = [ex["sol1"], ex["sol2"]]
    answer = pick_label(options, ex["label"])
    if answer is None:
        return None
    return {"goal": ex["goal"], "options": options, "answer": answer}


PIQA = DatasetSpec(
    name="piqa",
    cluster="commonsense",
    sources={"piqa": TfdsSource("piqa", "1.0.0", {"train": "train", "validation": "validation"})},
    to_fields=piqa_fields,
    fields=("goal", "options", "answer"),
    templates=(
        T("Goal: {goal}\n\nWhich is the better way to do it?{options_}", "{answer}"),
        T("What is the right way to handle the following?\n{goal}{options_}", "{answer}"),
        T("{goal}{options_}", "{answer}"),
        T("Someone wants to achieve this: \"{goal}\" What should they do?{options_}", "{answer}"),
        T("Pick the solution that actually works.\nTask: {goal}{options_}", "{answer}"),
        T("Using common sense about the physical world, choose the right method for the following "
          "goal.\n{goal}{options_}", "{answer}"),
        T("Here's a practical problem: \"{goal}\" Which approach makes more sense?{options_}",
          "{answer}"),
        T("Objective: {goal}{options_}\nBest method:", "{answer}"),
        T("Which of these achieves the goal below?{options_}\n\nGoal: {goal}", "{answer}"),
        T("Here is a method: {answer}\n\nWhat goal does it achieve?", "{goal}", inverted=True),
    ),
    options_field="options",
    description="Physical Interaction QA (2 solutions).",
)


# ---------------------------------------------------------------------------------------------
# StoryCloze 2016: choose the right fifth sentence of a four-sentence story. TFDS has only the
# validation and test splits (both labelled); we train on validation and evaluate on test.
# Its label is 1-based (the CSV's AnswerRightEnding column).
def story_cloze_fields(ex: Mapping[str, Any]) -> Fields | None:
    options = list(ex["endings"])
    answer = pick_label(options, int(ex["label"]) - 1)
    if answer is None:
        return None
    return {"context": ex["context"], "options": options, "answer": answer}


STORY_CLOZE = DatasetSpec(
    name="story_cloze",
    cluster="commonsense",
    sources={"story_cloze": TfdsSource("story_cloze/2016", "1.0.0",
                                       {"train": "validation", "validation": "test"})},
    to_fields=story_cloze_fields,
    fields=("context", "options", "answer"),
    templates=(
        T("{context}\n\nHow does the story end?{options_}", "{answer}"),
        T("Story: {context}\nPick the most fitting last sentence.{options_}", "{answer}"),
        T("Read the beginning of a story and choose its ending.\n\n{context}{options_}", "{answer}"),
        T("What is the next sentence of this story?\n{context}{options_}", "{answer}"),
        T("{context} Then what?{options_}", "{answer}"),
        T("Here's a short story missing its final line: \"{context}\" Which line completes it?"
          "{options_}", "{answer}"),
        T("Choose the ending that makes sense.{options_}\n\nStory so far: {context}", "{answer}"),
        T("Four sentences: {context}\nFifth sentence?{options_}", "{answer}"),
        T("Finish this story in one sentence.\n{context}{options_}", "{answer}"),
        T("Write the first four sentences of a story that ends with: \"{answer}\"", "{context}",
          inverted=True),
    ),
    options_field="options",
    description="StoryCloze 2016 (manual download); train = tfds validation, eval = tfds test.",
)

DATASETS: tuple[DatasetSpec, ...] = (COPA, HELLASWAG, PIQA, STORY_CLOZE)
