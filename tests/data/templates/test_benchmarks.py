"""The `benchmarks` collection: lint, hand-checked fields from the packages' first rows, and every
template rendered."""
from __future__ import annotations

import pytest

from flan_jax.data.templates import benchmarks
from flan_jax.data.templates.lint import lint_dataset
from flan_jax.data.templates.render import render

# dataset -> (packaged row (text shortened), expected fields), answers read off the HF label names.
CASES = {
    "social_i_qa": (
        {"context": "Tracy didn't go home that evening and resisted Riley's attacks.",
         "question": "What does Tracy need to do before this?", "answerA": "make a new plan",
         "answerB": "Go home and see Riley", "answerC": "Find somewhere to go", "label": "3"},
        {"context": "Tracy didn't go home that evening and resisted Riley's attacks.",
         "question": "What does Tracy need to do before this?",
         "options": ["make a new plan", "Go home and see Riley", "Find somewhere to go"],
         "answer": "Find somewhere to go"}),
    "commonsense_qa": (
        {"id": "1afa02df02c908a558b4036e80242fac", "question": "A revolving door is a security "
         "measure at a what?", "question_concept": "revolving door",
         "choices": {"label": ["A", "B", "C", "D", "E"],
                     "text": ["bank", "library", "department store", "mall", "new york"]},
         "answerKey": "A"},
        {"question": "A revolving door is a security measure at a what?",
         "options": ["bank", "library", "department store", "mall", "new york"], "answer": "bank"}),
    "openbookqa_closed_book": (
        {"id": "8-376", "question_stem": "Frilled sharks and angler fish live far beneath the "
         "surface of the ocean, which is why they are known as",
         "choices": {"text": ["Deep sea animals", "fish", "Long Sea Fish", "Far Sea Animals"],
                     "label": ["A", "B", "C", "D"]}, "answerKey": "A"},
        {"question": "Frilled sharks and angler fish live far beneath the surface of the ocean, "
         "which is why they are known as",
         "options": ["Deep sea animals", "fish", "Long Sea Fish", "Far Sea Animals"],
         "answer": "Deep sea animals"}),
}
SCIQ_ROW = {"question": "Who proposed the theory of evolution by natural selection?",
            "distractor3": "Scopes", "distractor1": "Linnaeus", "distractor2": "shaw",
            "correct_answer": "darwin", "support": ""}


def _spec(name):
    (spec,) = [s for s in benchmarks.DATASETS if s.name == name]
    return spec


def test_lint_is_clean_and_each_has_ten_templates():
    for spec in benchmarks.all_datasets():
        assert lint_dataset(spec) == [], spec.name
        assert len(spec.templates) == 10 and sum(t.inverted for t in spec.templates) == 1


def test_clusters_are_flan_2021_clusters():
    from flan_jax.data.templates import flan2021

    assert {s.cluster for s in benchmarks.DATASETS} <= set(flan2021.CLUSTERS)
    names = {s.name for s in flan2021.all_datasets()}
    assert not names & {s.name for s in benchmarks.DATASETS}


@pytest.mark.parametrize("name", sorted(CASES) + ["sciq"])
def test_fields_and_every_template(name):
    spec = _spec(name)
    if name == "sciq":
        fields = spec.to_fields(SCIQ_ROW)
        assert fields["answer"] == "darwin"
        assert sorted(fields["options"]) == sorted(["darwin", "Linnaeus", "shaw", "Scopes"])
    else:
        row, expected = CASES[name]
        fields = spec.to_fields(row)
        assert fields == expected
    for i, template in enumerate(spec.templates):
        inputs, targets = render(spec, i, fields, with_options=True)
        assert inputs.strip() and targets.strip()
        if not template.inverted:
            assert targets == fields["answer"] and "OPTIONS:" in inputs
            assert all(f"- {o}" in inputs for o in fields["options"])


def test_sciq_option_order_is_content_based_and_varies():
    spec = _spec("sciq")
    swapped = dict(SCIQ_ROW, distractor1="Scopes", distractor3="Linnaeus")
    assert spec.to_fields(swapped)["options"] == spec.to_fields(SCIQ_ROW)["options"]
    positions = set()
    for i in range(40):
        row = dict(SCIQ_ROW, question=f"Question {i}?")
        fields = spec.to_fields(row)
        positions.add(fields["options"].index("darwin"))
    assert positions == {0, 1, 2, 3}  # 40 rows: each of 4 positions is missed with p < 1e-4


@pytest.mark.parametrize("name, row", [
    ("social_i_qa", dict(CASES["social_i_qa"][0], label="")),
    ("social_i_qa", dict(CASES["social_i_qa"][0], label="4")),
    ("commonsense_qa", dict(CASES["commonsense_qa"][0], answerKey="")),
    ("openbookqa_closed_book", dict(CASES["openbookqa_closed_book"][0], answerKey="F")),
])
def test_unlabelled_rows_are_dropped(name, row):
    assert _spec(name).to_fields(row) is None
