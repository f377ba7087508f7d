"""FLAN 2021 miscellaneous cluster: CoQA, QuAC, TREC, CoLA, WiC, math_dataset, fix_punct.

Flattening of the conversational datasets
-----------------------------------------
CoQA (TFDS `coqa`) stores one story with all its turns. We keep the whole conversation in one
example: the questions become a numbered list and the target is the matching numbered list of
free-form answers (`input_text`); extra questions without an answer (or answers without a
question) are cut off, and a story with no complete turn is dropped.

    raw    {"story": "Tom has a red bike.", "source": "mctest",
            "questions": ["What does Tom have?", "What color?"],
            "answers": {"input_text": ["a bike", "red"], "answer_start": [...],
                        "answer_end": [...]}}
    fields {"story": "Tom has a red bike.",
            "questions": "1. What does Tom have?\\n2. What color?",
            "answer": "1. a bike\\n2. red"}

QuAC (TFDS `quac`) already has one row per question, and the dialogue history is not kept in
the row, so each row is answered on its own from the section text. The section text ends with
the marker "CANNOTANSWER", which we strip; a question whose original answer is "CANNOTANSWER"
gets the fixed target UNANSWERABLE ("unanswerable").

fix_punct reads TFDS para_crawl/enda as FLAN does, local JSONL files as a fallback
(see `FIX_PUNCT_HOW_TO`).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flan_jax.data.templates.flan2021.common import YES_NO, first_text, pick_label
from flan_jax.data.templates.spec import DatasetSpec, Fields, LocalSource, Template, TfdsSource

T = Template
CLUSTER = "misc"
UNANSWERABLE = "unanswerable"
_QUAC_NO_ANSWER = "CANNOTANSWER"
_FALSE_TRUE = ("no", "yes")  # label index -> option text for 0 = false / 1 = true labels


def _numbered(lines: list[str]) -> str:
    """["a", "b"] -> "1. a\\n2. b"."""
    return "\n".join(f"{i}. {line.strip()}" for i, line in enumerate(lines, start=1))


# ---------------------------------------------------------------------------------------------
# CoQA: a story and a conversation of questions about it (flattened, see module docstring).
def coqa_fields(ex: Mapping[str, Any]) -> Fields | None:
    questions, answers = ex["questions"], ex["answers"]["input_text"]
    n = min(len(questions), len(answers))
    if n == 0:
        return None
    return {"story": ex["story"], "questions": _numbered(questions[:n]),
            "answer": _numbered(answers[:n])}


COQA_TEMPLATES = (
    T("{story}\n\nAnswer these questions in order, numbering your answers:\n{questions}",
      "{answer}"),
    T("Read the story, then answer each question briefly.\n\nStory: {story}\n\nQuestions:\n"
      "{questions}", "{answer}"),
    T("{questions}\n\nAll of the questions above are about this text:\n{story}\n\nGive numbered "
      "answers.", "{answer}"),
    T("Here is a passage.\n{story}\n\nA reader asked a series of questions:\n{questions}\n\nWhat "
      "are the answers?", "{answer}"),
    T("Text: {story}\n\nQ (numbered):\n{questions}\n\nA (numbered):", "{answer}"),
    T("Have a conversation about the story below by answering each question in turn.\n\n{story}"
      "\n\n{questions}", "{answer}"),
    T("{story}\n\nShort answers, please.\n{questions}", "{answer}"),
    T("Story:\n{story}\n\nUsing the story, respond to every numbered question.\n{questions}",
      "{answer}"),
    T("{story}\n\nThe following questions build on each other; answer them one by one.\n"
      "{questions}", "{answer}"),
    T("{story}\n\nHere are numbered answers to questions about the story:\n{answer}\n\nWrite the "
      "numbered questions they answer.", "{questions}", inverted=True),
)


# ---------------------------------------------------------------------------------------------
# QuAC: information-seeking questions about a Wikipedia section (one row per question).
def quac_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = first_text([ex["orig_answer"]["text"], *ex["answers"]["text"]])
    if answer is None:
        return None
    if answer.strip() == _QUAC_NO_ANSWER:
        answer = UNANSWERABLE
    context = ex["context"].strip().removesuffix(_QUAC_NO_ANSWER).rstrip()
    return {"title": ex["title"], "section": ex["section_title"], "context": context,
            "question": ex["question"], "answer": answer}


QUAC_TEMPLATES = (
    T("{title} -- {section}\n\n{context}\n\nQuestion: {question} (Say \"unanswerable\" if the "
      "text does not tell.)", "{answer}"),
    T("Read this section of the Wikipedia article on {title}.\n\n{context}\n\n{question}",
      "{answer}"),
    T("Context: {context}\n\nQ: {question}\nA (quote the text, or \"unanswerable\"):", "{answer}"),
    T("I'm reading about {title}, in the part called \"{section}\". {question}\n\nHere is the "
      "text: {context}", "{answer}"),
    T("{context}\n\nAnswer from the passage above, copying the relevant words: {question}",
      "{answer}"),
    T("Section \"{section}\" of \"{title}\":\n{context}\n\nWhat would you reply to: {question}",
      "{answer}"),
    T("{question}\n\nFind the answer in this passage, if it is there:\n{context}", "{answer}"),
    T("Passage about {title}:\n{context}\n\nBased on the passage, answer: {question}",
      "{answer}"),
    T("A student reading about {title} asks: \"{question}\"\n\nUse this excerpt to answer:\n"
      "{context}", "{answer}"),
    T("{context}\n\nThis text comes from a Wikipedia article. What is the article's title?",
      "{title}", inverted=True),
)


# ---------------------------------------------------------------------------------------------
# TREC: what kind of answer does a question ask for? (coarse labels, in TFDS label order
# DESC, ENTY, ABBR, HUM, NUM, LOC)
TREC_OPTIONS = ("description", "entity", "abbreviation", "human", "number", "location")


def trec_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = pick_label(TREC_OPTIONS, ex["label-coarse"])
    if answer is None:
        return None
    return {"question": ex["text"], "answer": answer}


TREC_TEMPLATES = (
    T("What type of thing is the question \"{question}\" asking about?{options_}", "{answer}"),
    T("Question: {question}\n\nWhich category would its answer fall into?{options_}", "{answer}"),
    T("Classify this question by the kind of answer it expects.\n{question}{options_}", "{answer}"),
    T("{question}\n\nIs this asking for a description, an entity, an abbreviation, a person, a "
      "number or a place?{options_}", "{answer}"),
    T("Here is a question from a quiz: {question}\nWhat is the answer type?{options_}", "{answer}"),
    T("If someone asked you \"{question}\", what sort of answer would you give?{options_}",
      "{answer}"),
    T("Answer type of \"{question}\":{options_}", "{answer}"),
    T("{question}\n\nPick the label that describes the expected answer.{options_}", "{answer}"),
    T("Question classification task.\nInput: {question}{options_}\nLabel:", "{answer}"),
    T("Write a question whose answer would be of the type \"{answer}\".", "{question}",
      inverted=True),
)


# ---------------------------------------------------------------------------------------------
# CoLA: is the sentence grammatically acceptable? (label 1 = acceptable)
def cola_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = pick_label(_FALSE_TRUE, ex["label"])
    if answer is None:
        return None
    return {"sentence": ex["sentence"], "answer": answer}


COLA_TEMPLATES = (
    T("Is this sentence grammatically acceptable?\n\n{sentence}{options_}", "{answer}"),
    T("\"{sentence}\"\n\nWould a native English speaker consider this a well-formed sentence?"
      "{options_}", "{answer}"),
    T("Sentence: {sentence}\nIs it grammatical?{options_}", "{answer}"),
    T("A linguist is checking example sentences. Is the following one correct English?\n{sentence}"
      "{options_}", "{answer}"),
    T("{sentence}\n\nDoes this sentence follow the rules of English grammar?{options_}",
      "{answer}"),
    T("Check the grammar: {sentence}\nIs it fine as written?{options_}", "{answer}"),
    T("Could the following appear in careful English writing without being an error?\n\n"
      "{sentence}{options_}", "{answer}"),
    T("Tell me whether this is an acceptable English sentence: \"{sentence}\"{options_}",
      "{answer}"),
    T("{sentence}\nIs the sentence above syntactically and semantically acceptable?{options_}",
      "{answer}"),
    T("Grammar judgment.\nInput: {sentence}{options_}\nAcceptable:", "{answer}"),
)


# ---------------------------------------------------------------------------------------------
# WiC: does a word have the same meaning in two sentences? (label 1 = same sense)
def wic_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = pick_label(_FALSE_TRUE, ex["label"])
    if answer is None:
        return None
    return {"word": ex["word"], "sentence1": ex["sentence1"], "sentence2": ex["sentence2"],
            "answer": answer}


WIC_TEMPLATES = (
    T("{sentence1}\n{sentence2}\n\nIs \"{word}\" used with the same meaning in both sentences?"
      "{options_}", "{answer}"),
    T("Sentence A: {sentence1}\nSentence B: {sentence2}\nDoes the word \"{word}\" mean the same "
      "thing in A and B?{options_}", "{answer}"),
    T("Word: {word}\n1) {sentence1}\n2) {sentence2}\nSame sense?{options_}", "{answer}"),
    T("Here are two sentences that both contain \"{word}\".\n\n{sentence1}\n{sentence2}\n\nIf you "
      "looked both up in a dictionary, would they be the same definition?{options_}", "{answer}"),
    T("Does \"{word}\" have one meaning across these two uses?\n- {sentence1}\n- {sentence2}"
      "{options_}", "{answer}"),
    T("First: {sentence1}\nSecond: {sentence2}\n\nIn both, is {word} meant in the same way?"
      "{options_}", "{answer}"),
    T("Decide whether the target word keeps its sense.\nTarget: {word}\nContext 1: {sentence1}\n"
      "Context 2: {sentence2}{options_}", "{answer}"),
    T("\"{sentence1}\" and \"{sentence2}\" -- is the meaning of \"{word}\" identical here?"
      "{options_}", "{answer}"),
    T("{sentence1}\n\nNow compare with: {sentence2}\n\nDoes \"{word}\" carry the same sense in "
      "the second sentence as in the first?{options_}", "{answer}"),
    T("Word in context: {word}\n{sentence1}\n{sentence2}\nSame meaning?{options_}\nAnswer:",
      "{answer}"),
)


# ---------------------------------------------------------------------------------------------
# math_dataset (algebra__linear_1d): solve a linear equation in one variable.
def math_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = ex["answer"].strip()
    if not answer:
        return None
    return {"question": ex["question"].strip(), "answer": answer}


MATH_TEMPLATES = (
    T("{question}", "{answer}"),
    T("Solve this math problem.\n\n{question}", "{answer}"),
    T("Math question: {question}\nAnswer:", "{answer}"),
    T("{question}\nGive only the final number.", "{answer}"),
    T("Work out the answer: {question}", "{answer}"),
    T("Here is an algebra exercise. {question}", "{answer}"),
    T("Q: {question}\nA:", "{answer}"),
    T("What is the solution? {question}", "{answer}"),
    T("A student needs help with homework: \"{question}\" What is the answer?", "{answer}"),
    T("Write a linear equation in one variable whose solution is {answer}, and ask for it to be "
      "solved.", "{question}", inverted=True),
)


# ---------------------------------------------------------------------------------------------
# fix_punct: restore the punctuation of English text. FLAN derives it from TFDS para_crawl/enda
# (flan/tasks.py `_process_fix_punct`): the English side with every character matched by the RE2
# class [^\w\s] removed (RE2's \w and \s are ASCII), rows without punctuation dropped, on the
# slice of the train split after the one true_case uses. Local files are the fallback when
# para_crawl is not prepared (tasks.resolve_source).
FIX_PUNCT_HOW_TO = (
    "Preferred: prepare TFDS para_crawl/enda:1.2.0 (the task reads it like FLAN). Fallback: "
    "write fix_punct/train.jsonl and fix_punct/validation.jsonl under the data directory, one "
    "JSON object per line with two keys: \"original\" (a sentence as written) and \"stripped\" "
    "(the same text with every character other than ASCII letters, digits, underscore and "
    "whitespace removed). Example: {\"original\": \"Hi, Ann! It's late.\", \"stripped\": "
    "\"Hi Ann Its late\"}."
)
_NOT_WORD_OR_SPACE = re.compile(r"[^0-9A-Za-z_\t\n\f\r ]")  # RE2 [^\w\s]
# flan/tasks.py: NUM_TRAIN_EXAMPLES = 30000, NUM_VAL_EXAMPLES = 200; true_case takes train[:30200].
FIX_PUNCT_SPLITS = {"train": "train[30200:60200]", "validation": "train[60200:60400]",
                    "test": "train[-3000:]"}


def fix_punct_fields(row: Mapping[str, Any]) -> Fields | None:
    if "en" in row:  # TFDS para_crawl row
        original = row["en"]
        stripped = _NOT_WORD_OR_SPACE.sub("", original)
        if stripped == original:
            return None
        return {"stripped": stripped, "answer": original}
    if not row["original"].strip():
        return None
    return {"stripped": row["stripped"], "answer": row["original"]}


FIX_PUNCT_TEMPLATES = (
    T("Add punctuation to this text: {stripped}", "{answer}"),
    T("{stripped}\n\nRewrite the text above with correct punctuation.", "{answer}"),
    T("The commas, periods and other marks were removed from this sentence. Put them back.\n\n"
      "{stripped}", "{answer}"),
    T("Unpunctuated: {stripped}\nPunctuated:", "{answer}"),
    T("Please fix the punctuation: {stripped}", "{answer}"),
    T("Make this readable by inserting the missing punctuation marks:\n{stripped}", "{answer}"),
    T("{stripped}\n\nThis was typed without any punctuation. How should it be written?",
      "{answer}"),
    T("Restore punctuation (keep the words unchanged).\nInput: {stripped}\nOutput:", "{answer}"),
    T("A friend sent me this message with no punctuation: \"{stripped}\" Can you punctuate it?",
      "{answer}"),
    T("Remove all punctuation from this text: {answer}", "{stripped}", inverted=True),
)

_TRAIN_VAL = {"train": "train", "validation": "validation"}
_TRAIN_TEST = {"train": "train", "validation": "test"}  # no validation split: test stands in

DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="coqa", cluster=CLUSTER,
        sources={"coqa": TfdsSource("coqa", "1.0.0", _TRAIN_TEST)},
        to_fields=coqa_fields, fields=("story", "questions", "answer"), templates=COQA_TEMPLATES,
        metric="f1",
        description="Conversational QA over short stories (CoQA), all turns in one example.",
    ),
    DatasetSpec(
        name="quac", cluster=CLUSTER,
        sources={"quac": TfdsSource("quac", "1.0.0", _TRAIN_VAL)},
        to_fields=quac_fields, fields=("title", "section", "context", "question", "answer"),
        templates=QUAC_TEMPLATES, metric="f1",
        description=f"Questions about Wikipedia sections (QuAC), one turn per example; "
        f"no-answer target {UNANSWERABLE!r}.",
    ),
    DatasetSpec(
        name="trec", cluster=CLUSTER,
        sources={"trec": TfdsSource("trec", "1.0.0", _TRAIN_TEST)},
        to_fields=trec_fields, fields=("question", "answer"), templates=TREC_TEMPLATES,
        options=TREC_OPTIONS,
        description="Question type classification, 6 coarse classes (TREC).",
    ),
    DatasetSpec(
        name="cola", cluster=CLUSTER,
        sources={"cola": TfdsSource("glue/cola", "2.0.0", _TRAIN_VAL)},
        to_fields=cola_fields, fields=("sentence", "answer"), templates=COLA_TEMPLATES,
        options=YES_NO,
        description="Grammatical acceptability judgments (GLUE CoLA).",
    ),
    DatasetSpec(
        name="wic", cluster=CLUSTER,
        sources={"wic": TfdsSource("super_glue/wic", "1.0.2", _TRAIN_VAL)},
        to_fields=wic_fields, fields=("word", "sentence1", "sentence2", "answer"),
        templates=WIC_TEMPLATES, options=YES_NO,
        description="Same word, same sense? (SuperGLUE WiC).",
    ),
    DatasetSpec(
        name="math_dataset", cluster=CLUSTER,
        sources={"math_dataset": TfdsSource("math_dataset/algebra__linear_1d", "1.0.0",
                                            _TRAIN_TEST)},
        to_fields=math_fields, fields=("question", "answer"), templates=MATH_TEMPLATES,
        metric="exact_match",
        description="Linear equations in one variable (DeepMind mathematics, algebra__linear_1d).",
    ),
    DatasetSpec(
        name="fix_punct", cluster=CLUSTER,
        sources={"fix_punct": TfdsSource(
            "para_crawl/enda", "1.2.0", FIX_PUNCT_SPLITS,
            fallback=LocalSource("fix_punct/{split}.jsonl", "jsonl", ("original", "stripped"),
                                 how_to_obtain=FIX_PUNCT_HOW_TO))},
        to_fields=fix_punct_fields, fields=("stripped", "answer"), templates=FIX_PUNCT_TEMPLATES,
        # BLEU's tokenizer keeps punctuation as tokens; ROUGE's drops it, so it could not tell.
        metric="bleu",
        description="Restore punctuation to English text (TFDS para_crawl/enda as FLAN derives "
        "it; local files as a fallback, see how_to_obtain).",
    ),
)
