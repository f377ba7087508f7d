"""The chain-of-thought collection: field mappings, CoT target shape, bundled sample files."""
from __future__ import annotations

from importlib import resources

import pytest

from flan_jax.data.templates import cot
from flan_jax.data.templates.lint import lint_dataset
from flan_jax.data.templates.render import render
from flan_jax.data.templates.spec import COT_ANSWER_MARKER, LocalSource

NAMES = ("gsm8k", "strategyqa", "aqua", "creak", "ecqa", "esnli", "qasc", "sensemaking", "qed")
SAMPLES = resources.files("flan_jax") / "assets" / "samples"


def test_collection_has_the_nine_datasets_and_lints_clean():
    assert tuple(s.name for s in cot.COT_DATASETS) == NAMES
    for spec in cot.COT_DATASETS:
        assert spec.cluster == "cot"
        assert len(spec.templates) == 10 and len(spec.cot_templates) == 10
        assert lint_dataset(spec) == []
        assert "[kind]" not in "".join(t.inputs + t.targets for t in spec.templates + spec.cot_templates)


def test_gsm8k_splits_solution_and_drops_calculator_notes():
    raw = {
        "question": "Natalia sold 48 clips in April and half as many in May. How many in all? ",
        "answer": "In May she sold 48/2 = <<48/2=24>>24 clips.\nSo 48+24 = <<48+24=72>>72.\n#### 72",
        "annotation": "ignored", "short_answer": "ignored",
    }
    assert cot.gsm8k_fields(raw) == {
        "question": "Natalia sold 48 clips in April and half as many in May. How many in all?",
        "answer": "72",
        "chain_of_thought": "In May she sold 48/2 = 24 clips. So 48+24 = 72.",
    }


def test_gsm8k_without_marker_uses_tfds_split_fields():
    raw = {"question": "q", "answer": "no marker here", "annotation": "2 + 2 = 4.\n",
           "short_answer": " 4"}
    assert cot.gsm8k_fields(raw) == {"question": "q", "answer": "4", "chain_of_thought": "2 + 2 = 4."}
    assert cot.gsm8k_fields({**raw, "short_answer": ""}) is None


def test_tsv_row_unescapes_line_breaks_and_drops_empty_answers():
    row = {"question": "Is the sky green?\\nOptions:\\n- yes\\n- no", "answer": "no ",
           "chain_of_thought": "The sky looks blue or grey."}
    assert cot.tsv_fields(row) == {"question": "Is the sky green?\nOptions:\n- yes\n- no",
                                   "answer": "no", "chain_of_thought": "The sky looks blue or grey."}
    assert cot.tsv_fields({**row, "answer": " "}) is None


FIELDS = {"question": "What is 2 + 3?", "answer": "5", "chain_of_thought": "2 plus 3 makes 5."}


@pytest.mark.parametrize("spec", cot.COT_DATASETS, ids=NAMES)
def test_cot_targets_give_rationale_then_marker_and_answer(spec):
    for i, template in enumerate(spec.cot_templates):
        inputs, targets = render(spec, i, FIELDS, with_options=False, templates=spec.cot_templates)
        if template.inverted:
            assert targets == FIELDS["question"] and "5" in inputs
            continue
        assert targets.endswith(f"{COT_ANSWER_MARKER} 5.")
        assert targets.index("2 plus 3 makes 5.") < targets.rindex(COT_ANSWER_MARKER)
        assert targets.rsplit(COT_ANSWER_MARKER, 1)[1] == " 5."
        assert "2 plus 3" not in inputs


def test_hand_written_renders():
    gsm8k, esnli = cot.COT_DATASETS[0], cot.COT_DATASETS[5]
    assert render(gsm8k, 2, FIELDS, with_options=False, templates=gsm8k.cot_templates) == (
        "Answer this math word problem, explaining your reasoning before you give the answer."
        "\n\nWhat is 2 + 3?",
        "Reasoning: 2 plus 3 makes 5.\nSo the answer is 5.",
    )
    assert render(esnli, 8, FIELDS, with_options=True) == (
        "Here is a premise-hypothesis question for you.\nWhat is 2 + 3?\nYour answer:", "5")


def _read_tsv(path) -> list[dict[str, str]]:
    """An independent reader of the sample files (three tab-separated cells a line)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = line.split("\t")
        assert len(cells) == 3, line
        rows.append(dict(zip(cot.COT_FIELDS, cells)))
    return rows


@pytest.mark.parametrize("spec", cot.COT_DATASETS[1:], ids=NAMES[1:])
def test_bundled_samples_map_and_render(spec):
    (source,) = spec.sources.values()
    assert isinstance(source, LocalSource) and source.format == "tsv"
    for split in source.splits:
        path = SAMPLES.joinpath(source.file_pattern.replace("{split}", split))
        rows = _read_tsv(path)
        assert rows
        for row in rows:
            fields = cot.tsv_fields(row)
            assert fields is not None and "\\n" not in fields["question"]
            for templates in (spec.templates, spec.cot_templates):
                for i in range(len(templates)):
                    render(spec, i, fields, with_options=False, templates=templates)


def test_samples_pass_the_local_file_reader():
    from flan_jax.data.sources.datasources import local_path, read_rows

    for spec in cot.COT_DATASETS[1:]:
        (source,) = spec.sources.values()
        for split in source.splits:
            path = local_path(source, split, str(SAMPLES), spec.name)
            rows = read_rows(path, source.format, source.columns, spec.answer_field)
            assert rows == _read_tsv(path)
