"""The chain-of-thought (CoT) collection: nine datasets with a rationale for every answer.

Every dataset maps to the fields (question, answer, chain_of_thought). Each has 10 plain
`templates` (the target is the answer) and 10 `cot_templates` whose targets give the rationale
and then end with f"{COT_ANSWER_MARKER} {{answer}}." (evaluation parses the text after the
marker). One template of each set is inverted: it shows the answer (and rationale) and asks
for the question.

GSM8K comes from TFDS; its `answer` text is the worked solution, then "#### <number>". We split
it there and drop the calculator annotations ("<<48/2=24>>"):

    raw    {"question": "Natalia sold 48 clips in April and half as many in May. How many in all?",
            "answer": "In May she sold 48/2 = <<48/2=24>>24 clips.\\nSo 48+24 = <<48+24=72>>72.\\n#### 72",
            "annotation": ..., "short_answer": ...}
    fields {"question": "Natalia sold 48 clips in April and half as many in May. How many in all?",
            "chain_of_thought": "In May she sold 48/2 = 24 clips. So 48+24 = 72.",
            "answer": "72"}

The other eight are local TSV files in the layout of the FLAN v2 CoT data (no header; columns
question, answer, rationale; line breaks inside a cell written as the two characters "\\n",
which we turn back into real line breaks):

    row    {"question": "Is the sky green?\\\\nOptions:\\\\n- yes\\\\n- no", "answer": "no",
            "chain_of_thought": "The sky looks blue or grey, not green."}
    fields {"question": "Is the sky green?\\nOptions:\\n- yes\\n- no", "answer": "no",
            "chain_of_thought": "The sky looks blue or grey, not green."}

Small hand-written sample files live in flan_jax/assets/samples/cot/<name>/{train,validation}.tsv;
pass data_dir=<that samples folder> to run the local CoT tasks offline.

All datasets share one template text with a per-dataset noun ("math word problem", "yes/no
question", ...) substituted for the `[kind]` slot when the module is built (no randomness).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flan_jax.data.templates.spec import (
    COT_ANSWER_MARKER,
    DatasetSpec,
    Fields,
    LocalSource,
    Template,
    TfdsSource,
)

T = Template
COT_FIELDS = ("question", "answer", "chain_of_thought")
_END = f"{COT_ANSWER_MARKER} {{answer}}."  # "So the answer is {answer}."

# ---------------------------------------------------------------------------------------------
# Shared templates; "[kind]" becomes the dataset's noun, e.g. "math word problem".
PLAIN_TEMPLATES = (
    T("{question}", "{answer}"),
    T("Answer the following [kind].\n\n{question}", "{answer}"),
    T("Q: {question}\nA:", "{answer}"),
    T("{question}\n\nGive only the final answer.", "{answer}"),
    T("Consider this [kind]: {question}\nWhat is the answer?", "{answer}"),
    T("Question: {question}\nAnswer:", "{answer}"),
    T("I'm stuck on this [kind]. {question} What's the answer?", "{answer}"),
    T("Respond with the answer and nothing else.\n{question}", "{answer}"),
    T("Here is a [kind] for you.\n{question}\nYour answer:", "{answer}"),
    T("Write a [kind] whose answer is \"{answer}\", given this explanation: {chain_of_thought}",
      "{question}", inverted=True),
)

COT_TEMPLATES = (
    T("{question}\nLet's think step by step.", "{chain_of_thought} " + _END),
    T("Q: {question}\nA: Think it through first.", "{chain_of_thought}\n" + _END),
    T("Answer this [kind], explaining your reasoning before you give the answer.\n\n{question}",
      "Reasoning: {chain_of_thought}\n" + _END),
    T("{question}\n\nWork it out, then state the answer.", "{chain_of_thought} " + _END),
    T("Here is a [kind]: {question}\nShow your reasoning.", "Let's see. {chain_of_thought} " + _END),
    T("Student: {question}\nTeacher: Let me explain.", "{chain_of_thought} " + _END),
    T("Solve the following [kind] and say how you got there.\n{question}",
      "{chain_of_thought}\n\n" + _END),
    T("Question: {question}\nGive a short explanation first, then the answer.",
      "Explanation: {chain_of_thought} " + _END),
    T("I'd like to understand this, not just get the answer: {question}",
      "Sure. {chain_of_thought} " + _END),
    T("Given the reasoning \"{chain_of_thought}\" and the answer \"{answer}\", what was the "
      "[kind]?", "{question}", inverted=True),
)


def _with_kind(templates: tuple[Template, ...], kind: str) -> tuple[Template, ...]:
    """Fills the "[kind]" slot: "Answer the following [kind]." -> "Answer the following math word problem."."""
    return tuple(T(t.inputs.replace("[kind]", kind), t.targets.replace("[kind]", kind), t.inverted)
                 for t in templates)


# ---------------------------------------------------------------------------------------------
# Field mappings.
_CALCULATOR = re.compile(r"<<[^>]*>>")


def gsm8k_fields(ex: Mapping[str, Any]) -> Fields | None:
    """Splits the solution at "####"; falls back to TFDS's annotation / short_answer split."""
    solution, sep, final = ex["answer"].rpartition("####")
    if not sep:
        solution, final = ex["annotation"], ex["short_answer"]
    steps = " ".join(line.strip() for line in _CALCULATOR.sub("", solution).splitlines())
    rationale, answer = " ".join(steps.split()), final.strip()
    if not rationale or not answer:
        return None
    return {"question": ex["question"].strip(), "answer": answer, "chain_of_thought": rationale}


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").strip()


def tsv_fields(row: Mapping[str, Any]) -> Fields | None:
    """A FLAN v2 style CoT row; literal "\\n" in a cell becomes a line break."""
    fields = {k: _unescape(str(row[k])) for k in COT_FIELDS}
    if not fields["answer"] or not fields["chain_of_thought"]:
        return None
    return fields


def _local(name: str, flan_file: str, what: str) -> LocalSource:
    return LocalSource(
        file_pattern=f"cot/{name}/{{split}}.tsv",
        format="tsv",
        columns=COT_FIELDS,
        splits=("train", "validation"),
        how_to_obtain=(
            f"{what} Take {flan_file} from the CoT data of the FLAN v2 release "
            "(github.com/google-research/FLAN, flan/v2/cot_data; tab-separated question, answer, "
            f"rationale, no header) and save it as <data_dir>/cot/{name}/train.tsv; hold out some "
            f"rows as cot/{name}/validation.tsv. Tiny samples: flan_jax/assets/samples/cot/{name}/."
        ),
    )


# (name, noun for the templates, FLAN v2 file name, what it is) of the local datasets.
_LOCAL = (
    ("strategyqa", "yes/no question", "strategyqa_train.tsv",
     "StrategyQA: yes/no questions needing implicit multi-step reasoning."),
    ("aqua", "multiple-choice math problem", "aqua_train.tsv",
     "AQuA-RAT: algebra word problems with five options and written rationales."),
    ("creak", "question about a claim", "creak_train.tsv",
     "CREAK: is a claim about an entity true? (yes/no)."),
    ("ecqa", "commonsense question", "ecqa_train.tsv",
     "ECQA: CommonsenseQA questions with human explanations."),
    ("esnli", "premise-hypothesis question", "esnli_train.tsv",
     "e-SNLI: SNLI premise/hypothesis pairs with human explanations."),
    ("qasc", "science question", "qasc_train.tsv",
     "QASC: grade-school science multiple choice built from two composed facts."),
    ("sensemaking", "common-sense question", "sensemaking_train.tsv",
     "Sen-Making (ComVE): which sentence goes against common sense?"),
    ("qed", "reading question", "qed_train.tsv",
     "QED: Natural Questions passages with explanations of the answer."),
)


def _spec(name: str, kind: str, source: Any, to_fields: Any, description: str) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        cluster="cot",
        sources={name: source},
        to_fields=to_fields,
        fields=COT_FIELDS,
        templates=_with_kind(PLAIN_TEMPLATES, kind),
        cot_templates=_with_kind(COT_TEMPLATES, kind),
        metric="exact_match",
        description=description,
    )


GSM8K = _spec("gsm8k", "math word problem",
              TfdsSource("gsm8k", "1.0.0", {"train": "train", "validation": "test"}),
              gsm8k_fields, "GSM8K grade-school math; the tfds test split is used for evaluation.")

COT_DATASETS: tuple[DatasetSpec, ...] = (GSM8K,) + tuple(
    _spec(name, kind, _local(name, flan_file, what), tsv_fields, what)
    for name, kind, flan_file, what in _LOCAL
)


def local_cot_spec(name: str, path: str, splits: tuple[str, ...] | list[str] = ("train",)) -> DatasetSpec:
    """A CoT dataset over a user's file of (question, answer, chain_of_thought) rows: TSV in the
    FLAN v2 layout above when `path` ends in ".tsv", else JSONL objects with those keys. Rendered
    with the collection's templates ("[kind]" = "question"). `path` may contain "{split}"."""
    file_format = "tsv" if path.endswith(".tsv") else "jsonl"
    source = LocalSource(path, file_format, COT_FIELDS, tuple(splits))
    to_fields = tsv_fields if file_format == "tsv" else jsonl_fields
    return _spec(name, "question", source, to_fields, f"CoT {file_format} file {path}")


def jsonl_fields(row: Mapping[str, Any]) -> Fields | None:
    """A CoT JSONL row: the three fields, stripped (JSON strings hold real line breaks)."""
    fields = {k: str(row[k]).strip() for k in COT_FIELDS}
    return fields if fields["answer"] and fields["chain_of_thought"] else None
