"""Field mappings of the FLAN 2021 clusters nli, commonsense, sentiment, paraphrase,
closed_book_qa and struct_to_text: one hand-written raw example per dataset in the real TFDS
feature layout -> hand-computed fields, dropped rows, and a few hand-written renders.

No TensorFlow needed: raw examples are written as TFDS yields them after `as_numpy` (bytes,
numpy scalars and arrays) or directly as decoded Python values.
"""
from __future__ import annotations

import numpy as np
import pytest

from flan_jax.data.templates.flan2021 import (
    closed_book_qa,
    commonsense,
    common,
    nli,
    paraphrase,
    sentiment,
    struct_to_text,
)
from flan_jax.data.sources.pyvalues import to_python
from flan_jax.data.templates.render import render

MAYBE = "it is not possible to tell"

# (dataset spec, raw example as TFDS gives it, expected fields)
CASES = [
    # ---- nli
    (nli.ANLI,
     {"uid": b"a1", "context": b"Tom owns two cats.", "hypothesis": b"Tom has pets.",
      "label": np.int64(0)},
     {"premise": "Tom owns two cats.", "hypothesis": "Tom has pets.", "answer": "yes"}),
    (nli.CB,  # label names: entailment, contradiction, neutral
     {"premise": "She may come.", "hypothesis": "She will come.", "label": 2, "idx": 0},
     {"premise": "She may come.", "hypothesis": "She will come.", "answer": MAYBE}),
    (nli.MNLI,  # entailment, neutral, contradiction
     {"premise": b"It is raining.", "hypothesis": b"The sky is dry.", "label": np.int64(2),
      "idx": np.int32(5)},
     {"premise": "It is raining.", "hypothesis": "The sky is dry.", "answer": "no"}),
    (nli.QNLI,  # entailment, not_entailment
     {"question": "Where is Rome?", "sentence": "Bread is tasty.", "label": 1, "idx": 3},
     {"question": "Where is Rome?", "sentence": "Bread is tasty.", "answer": "no"}),
    (nli.RTE,
     {"premise": "A cat sat.", "hypothesis": "An animal sat.", "label": 0, "idx": 1},
     {"premise": "A cat sat.", "hypothesis": "An animal sat.", "answer": "yes"}),
    (nli.SNLI,
     {"premise": "Kids play.", "hypothesis": "Kids are at school.", "label": 1},
     {"premise": "Kids play.", "hypothesis": "Kids are at school.", "answer": MAYBE}),
    (nli.WNLI,  # not_entailment, entailment (reversed)
     {"sentence1": "The cup fell off the desk because it was tilted.",
      "sentence2": "The desk was tilted.", "label": 1, "idx": 9},
     {"premise": "The cup fell off the desk because it was tilted.",
      "hypothesis": "The desk was tilted.", "answer": "yes"}),
    # ---- commonsense
    (commonsense.COPA,
     {"premise": b"The ground was wet.", "question": b"cause", "choice1": b"The sun shone.",
      "choice2": b"It rained.", "label": np.int64(1), "idx": np.int32(3)},
     {"premise": "The ground was wet.", "question": "cause",
      "options": ["The sun shone.", "It rained."], "answer": "It rained."}),
    (commonsense.HELLASWAG,
     {"activity_label": b"Baking", "context": b"She puts the tray in the oven",
      "endings": np.array([b"and sings.", b"and waits.", b"and flies.", b"and swims."]),
      "label": np.int32(1), "source_id": b"x", "split_type": b"indomain"},
     {"context": "She puts the tray in the oven", "activity": "Baking",
      "options": ["and sings.", "and waits.", "and flies.", "and swims."],
      "answer": "and waits."}),
    (commonsense.PIQA,
     {"goal": "Open a jar.", "sol1": "Twist the lid.", "sol2": "Shake the jar.", "label": 0,
      "id": "p1"},
     {"goal": "Open a jar.", "options": ["Twist the lid.", "Shake the jar."],
      "answer": "Twist the lid."}),
    (commonsense.STORY_CLOZE,  # label is 1-based
     {"context": "Ann was hungry. She cooked.", "endings": ["She ate.", "She slept."],
      "label": 1},
     {"context": "Ann was hungry. She cooked.", "options": ["She ate.", "She slept."],
      "answer": "She ate."}),
    # ---- sentiment
    (sentiment.IMDB, {"text": b"A dull film.", "label": np.int64(0)},
     {"text": "A dull film.", "answer": "negative"}),
    (sentiment.SENTIMENT140,
     {"text": "great day!", "polarity": 4, "date": "d", "query": "NO_QUERY", "user": "u"},
     {"text": "great day!", "answer": "positive"}),
    (sentiment.SST2, {"sentence": "a gem of a movie", "label": 1, "idx": 2},
     {"text": "a gem of a movie", "answer": "positive"}),
    (sentiment.YELP, {"text": "Cold food, rude staff.", "label": 0},
     {"text": "Cold food, rude staff.", "answer": "negative"}),
    # ---- paraphrase
    (paraphrase.MRPC,
     {"sentence1": "He left at noon.", "sentence2": "At midday he departed.", "label": 1,
      "idx": 4},
     {"sentence1": "He left at noon.", "sentence2": "At midday he departed.", "answer": "yes"}),
    (paraphrase.QQP,
     {"question1": "How do I cook rice?", "question2": "Who wrote Dune?", "label": 0, "idx": 1},
     {"sentence1": "How do I cook rice?", "sentence2": "Who wrote Dune?", "answer": "no"}),
    (paraphrase.PAWS,
     {"sentence1": b"A bit B .", "sentence2": b"B bit A .", "label": np.int64(0)},
     {"sentence1": "A bit B .", "sentence2": "B bit A .", "answer": "no"}),
    (paraphrase.STSB,
     {"sentence1": "A dog runs.", "sentence2": "A dog is running.", "label": np.float32(4.6),
      "idx": np.int32(0)},
     {"sentence1": "A dog runs.", "sentence2": "A dog is running.", "answer": "5"}),
    # ---- closed_book_qa
    (closed_book_qa.ARC,
     {"id": b"q1", "question": b"Which gas do plants take in?", "answerKey": np.int64(1),
      "choices": {"text": np.array([b"oxygen", b"carbon dioxide"]),
                  "label": np.array([0, 1])}},
     {"question": "Which gas do plants take in?", "options": ["oxygen", "carbon dioxide"],
      "answer": "carbon dioxide"}),
    (closed_book_qa.NATURAL_QUESTIONS,
     {"question": b"who wrote hamlet", "answer": np.array([b"William Shakespeare",
                                                           b"Shakespeare"])},
     {"question": "who wrote hamlet?", "answer": "William Shakespeare"}),
    (closed_book_qa.TRIVIA_QA,
     {"question": "Which planet is known as the Red Planet?", "question_id": "t1",
      "question_source": "web",
      "answer": {"value": "Mars", "aliases": ["Mars"], "normalized_value": "mars",
                 "normalized_aliases": ["mars"], "matched_wiki_entity_name": "",
                 "normalized_matched_wiki_entity_name": "", "type": "WikipediaEntity"},
      "entity_pages": {"doc_source": [], "filename": [], "title": [], "wiki_context": []},
      "search_results": {"description": [], "filename": [], "rank": [],
                         "search_context": [], "title": [], "url": []}},
     {"question": "Which planet is known as the Red Planet?", "answer": "Mars"}),
    # ---- struct_to_text
    (struct_to_text.COMMON_GEN,
     {"gem_id": "g", "gem_parent_id": "g", "concept_set_id": 0,
      "concepts": ["dog", "frisbee", "catch"], "target": "A dog catches a frisbee.",
      "references": []},
     {"concepts": "dog, frisbee, catch", "answer": "A dog catches a frisbee."}),
    (struct_to_text.DART,  # validation row: target empty, references hold the texts
     {"gem_id": "d", "gem_parent_id": "d", "dart_id": 0,
      "tripleset": ["Mars Hill College joined 1973", "Mars Hill College location NC"],
      "subtree_was_extended": False, "target_sources": ["webnlg"], "target": "",
      "references": ["Mars Hill College, in NC, joined in 1973."]},
     {"data": "Mars Hill College joined 1973; Mars Hill College location NC",
      "answer": "Mars Hill College, in NC, joined in 1973."}),
    (struct_to_text.E2E_NLG,
     {"gem_id": "e", "gem_parent_id": "e", "meaning_representation": "name[Aromi], food[Chinese]",
      "target": "Aromi serves Chinese food.", "references": []},
     {"data": "name[Aromi], food[Chinese]", "answer": "Aromi serves Chinese food."}),
    (struct_to_text.WEB_NLG,
     {"gem_id": "w", "gem_parent_id": "w", "category": "City", "webnlg_id": "1",
      "input": ["Aarhus | leader | Jacob_Bundsgaard", "Aarhus | country | Denmark"],
      "target": "Jacob Bundsgaard leads Aarhus, Denmark.", "references": []},
     {"data": "Aarhus | leader | Jacob Bundsgaard; Aarhus | country | Denmark",
      "answer": "Jacob Bundsgaard leads Aarhus, Denmark."}),
]


@pytest.mark.parametrize("spec,raw,expected", CASES, ids=[c[0].name for c in CASES])
def test_fields_from_real_layout(spec, raw, expected):
    fields = spec.to_fields(to_python(raw))
    assert fields == expected
    assert set(fields) == set(spec.fields)


def test_every_dataset_of_these_clusters_has_a_case():
    covered = {c[0].name for c in CASES}
    modules = (nli, commonsense, sentiment, paraphrase, closed_book_qa, struct_to_text)
    assert {s.name for m in modules for s in m.DATASETS} == covered


# Rows the mappings must drop (return None).
DROPPED = [
    (nli.MNLI, {"premise": "p", "hypothesis": "h", "label": -1, "idx": 0}),
    (nli.WNLI, {"sentence1": "p", "sentence2": "h", "label": -1, "idx": 0}),
    (commonsense.HELLASWAG, {"activity_label": "a", "context": "c", "endings": ["x", "y"],
                             "label": -1, "source_id": "s", "split_type": "t"}),
    (commonsense.STORY_CLOZE, {"context": "c", "endings": ["x", "y"], "label": -1}),
    (sentiment.SENTIMENT140, {"text": "meh", "polarity": 2, "date": "", "query": "",
                              "user": ""}),
    (sentiment.SST2, {"sentence": "s", "label": -1, "idx": 0}),
    (paraphrase.STSB, {"sentence1": "a", "sentence2": "b", "label": -1.0, "idx": 0}),
    (closed_book_qa.ARC, {"id": "q", "question": "q?", "answerKey": 4,
                          "choices": {"text": ["a", "b"], "label": [0, 1]}}),
    (closed_book_qa.NATURAL_QUESTIONS, {"question": "q", "answer": []}),
    (closed_book_qa.TRIVIA_QA, {"question": "q", "answer": {"value": "<unk>"}}),
    (struct_to_text.COMMON_GEN, {"concepts": ["a"], "target": "", "references": []}),
]


@pytest.mark.parametrize("spec,raw", DROPPED, ids=[d[0].name for d in DROPPED])
def test_unusable_rows_are_dropped(spec, raw):
    assert spec.to_fields(raw) is None


def test_stsb_rounds_half_up():
    row = {"sentence1": "a", "sentence2": "b", "idx": 0}
    got = [paraphrase.stsb_fields({**row, "label": x})["answer"] for x in (0.0, 2.5, 4.49, 5.0)]
    assert got == ["0", "3", "4", "5"]


def test_common_helpers():
    assert common.pick_label(("no", "yes"), 1) == "yes"
    assert common.pick_label(("no", "yes"), -1) is None
    assert common.pick_label(("no", "yes"), 2) is None
    assert common.first_text(["", " ", "Paris"]) == "Paris"
    assert common.first_text([]) is None


# Hand-written renders: (spec, fields, template index, with_options, inputs, targets).
RENDERS = [
    (nli.RTE, CASES[4][2], 0, True,
     'A cat sat.\n\nDoes this mean that "An animal sat." is true?\n\nOPTIONS:\n- yes\n- no',
     "yes"),
    (nli.RTE, CASES[4][2], 0, False, 'A cat sat.\n\nDoes this mean that "An animal sat." is true?',
     "yes"),
    (commonsense.COPA, CASES[7][2], 0, True,
     "The ground was wet.\n\nWhat is the most likely cause of this?\n\nOPTIONS:\n"
     "- The sun shone.\n- It rained.", "It rained."),
    (commonsense.STORY_CLOZE, CASES[10][2], 9, True,
     'Write the first four sentences of a story that ends with: "She ate."',
     "Ann was hungry. She cooked."),
    (paraphrase.STSB, CASES[18][2], 6, True,
     "First: A dog runs.\nSecond: A dog is running.\nSimilarity (0-5):\n\nOPTIONS:\n"
     "- 0\n- 1\n- 2\n- 3\n- 4\n- 5", "5"),
    (closed_book_qa.ARC, CASES[19][2], 3, True,
     "Question: Which gas do plants take in?\n\nOPTIONS:\n- oxygen\n- carbon dioxide\nAnswer:",
     "carbon dioxide"),
    (sentiment.SENTIMENT140, CASES[12][2], 9, True, "Compose a tweet with a positive sentiment.",
     "great day!"),
    (struct_to_text.E2E_NLG, CASES[24][2], 4, False, "Data: name[Aromi], food[Chinese]\n"
     "Description:", "Aromi serves Chinese food."),
]


@pytest.mark.parametrize("spec,fields,index,with_options,inputs,targets", RENDERS,
                         ids=[f"{r[0].name}-{r[2]}-{r[3]}" for r in RENDERS])
def test_hand_written_render(spec, fields, index, with_options, inputs, targets):
    assert render(spec, index, fields, with_options=with_options) == (inputs, targets)
