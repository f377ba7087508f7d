"""FLAN 2021 structured-data-to-text cluster: CommonGen, DART, E2E NLG, WebNLG (TFDS `gem/...`).

Each maps its structured input to one string field and the reference text to `answer`
(`target`, or the first of `references` when `target` is empty; rows with neither, like
CommonGen's unreferenced test split, are dropped).

Worked examples:

    gem/common_gen  raw    {"concepts": ["dog", "frisbee", "catch"], "target": "A dog catches a frisbee.", ...}
                    fields {"concepts": "dog, frisbee, catch", "answer": "A dog catches a frisbee."}
    gem/e2e_nlg     raw    {"meaning_representation": "name[Aromi], food[Chinese]",
                            "target": "Aromi serves Chinese food.", ...}
                    fields {"data": "name[Aromi], food[Chinese]", "answer": "Aromi serves Chinese food."}
    gem/web_nlg_en  raw    {"input": ["Aarhus | leader | Jacob_Bundsgaard"], "target": "...", ...}
                    fields {"data": "Aarhus | leader | Jacob Bundsgaard", "answer": "..."}

DART triples come from TFDS already flattened to "subject predicate object" strings; WebNLG
triples are "subject | predicate | object" with underscores in entity names, which we turn into
spaces. Several triples are joined with "; ".
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flan_jax.data.templates.flan2021.common import first_text
from flan_jax.data.templates.spec import DatasetSpec, Fields, Template, TfdsSource

T = Template
_GEM = "1.1.0"
_SPLITS = {"train": "train", "validation": "validation", "test": "test"}


def _reference(ex: Mapping[str, Any]) -> str | None:
    return first_text([ex["target"], *ex["references"]])


# ---------------------------------------------------------------------------------------------
# CommonGen: write a sentence using all the given concepts.
def common_gen_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = _reference(ex)
    if answer is None:
        return None
    return {"concepts": ", ".join(ex["concepts"]), "answer": answer}


COMMON_GEN = DatasetSpec(
    name="common_gen",
    cluster="struct_to_text",
    sources={"common_gen": TfdsSource("gem/common_gen", _GEM,
                                      {"train": "train", "validation": "validation"})},
    to_fields=common_gen_fields,
    fields=("concepts", "answer"),
    templates=(
        T("Compose one sentence in which every one of these words appears: {concepts}", "{answer}"),
        T("Concepts: {concepts}\n\nDescribe an everyday scene that involves every concept above.",
          "{answer}"),
        T("Make one natural sentence out of these keywords.\n{concepts}", "{answer}"),
        T("{concepts}\n\nWhat is a sentence containing those words?", "{answer}"),
        T("Keywords: {concepts}\nSentence:", "{answer}"),
        T("I have a list of words ({concepts}). Can you combine them into a single sensible "
          "sentence?", "{answer}"),
        T("Generate a short description of a scene with: {concepts}", "{answer}"),
        T("Use the following concepts together in one sentence, in any order and form: {concepts}",
          "{answer}"),
        T("Here are some words: {concepts}. Tell me something that could happen involving all of "
          "them.", "{answer}"),
        T("Sentence: {answer}\n\nList the key concepts (nouns and verbs) this sentence is built "
          "around, separated by commas.", "{concepts}", inverted=True),
    ),
    metric="rouge",
    description="GEM CommonGen; the test split has no references and is not used.",
)


# ---------------------------------------------------------------------------------------------
# DART: open-domain RDF-like triples to text.
def dart_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = _reference(ex)
    if answer is None:
        return None
    return {"data": "; ".join(ex["tripleset"]), "answer": answer}


DART = DatasetSpec(
    name="dart",
    cluster="struct_to_text",
    sources={"dart": TfdsSource("gem/dart", _GEM, _SPLITS)},
    to_fields=dart_fields,
    fields=("data", "answer"),
    templates=(
        T("Triples: {data}\n\nPut these facts into words.", "{answer}"),
        T("Turn this data into fluent English: {data}", "{answer}"),
        T("{data}\n\nDescribe the data above in one or two sentences.", "{answer}"),
        T("Here are some facts written as subject-relation-object triples.\n{data}\nWhat is a "
          "natural way to say all of this?", "{answer}"),
        T("Data: {data}\nText:", "{answer}"),
        T("Verbalize the following knowledge-graph triples.\n\n{data}", "{answer}"),
        T("I have these database entries: {data} -- can you write them up as a sentence?",
          "{answer}"),
        T("Generate a short description covering every fact: {data}", "{answer}"),
        T("Summarize these structured facts in plain language.\n{data}", "{answer}"),
        T("Sentence: {answer}\n\nExtract the facts in this sentence as subject-relation-object "
          "triples.", "{data}", inverted=True),
    ),
    metric="bleu",
    description="GEM DART; triples are TFDS's space-joined strings, separated by '; '.",
)


# ---------------------------------------------------------------------------------------------
# E2E NLG: restaurant meaning representations to text.
def e2e_nlg_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = _reference(ex)
    if answer is None:
        return None
    return {"data": ex["meaning_representation"], "answer": answer}


E2E_NLG = DatasetSpec(
    name="e2e_nlg",
    cluster="struct_to_text",
    sources={"e2e_nlg": TfdsSource("gem/e2e_nlg", _GEM, _SPLITS)},
    to_fields=e2e_nlg_fields,
    fields=("data", "answer"),
    templates=(
        T("Restaurant attributes: {data}\n\nWhat would a one-sentence listing for this restaurant say?",
          "{answer}"),
        T("{data}\n\nDescribe the place above for a restaurant guide.", "{answer}"),
        T("Turn this meaning representation into a sentence: {data}", "{answer}"),
        T("Here is some information about an eatery: {data}. How would you tell a friend about "
          "it?", "{answer}"),
        T("Data: {data}\nDescription:", "{answer}"),
        T("Write a short review-style blurb using every attribute listed.\n{data}", "{answer}"),
        T("Generate text from the key-value pairs below.\n\n{data}", "{answer}"),
        T("A restaurant database has this entry: {data} Put it into plain English.", "{answer}"),
        T("Express all of these facts in one or two natural sentences: {data}", "{answer}"),
        T("Sentence: {answer}\n\nWrite this restaurant's attributes as a list like "
          "name[...], food[...], area[...].", "{data}", inverted=True),
    ),
    metric="bleu",
    description="GEM E2E NLG; meaning_representation -> data.",
)


# ---------------------------------------------------------------------------------------------
# WebNLG (English): DBpedia triples to text.
def web_nlg_fields(ex: Mapping[str, Any]) -> Fields | None:
    answer = _reference(ex)
    if answer is None:
        return None
    data = "; ".join(triple.replace("_", " ") for triple in ex["input"])
    return {"data": data, "answer": answer}


WEB_NLG = DatasetSpec(
    name="web_nlg",
    cluster="struct_to_text",
    sources={"web_nlg": TfdsSource("gem/web_nlg_en", _GEM, _SPLITS)},
    to_fields=web_nlg_fields,
    fields=("data", "answer"),
    templates=(
        T("Facts: {data}\n\nWrite a sentence that states these facts.", "{answer}"),
        T("Convert the triples into text.\n{data}", "{answer}"),
        T("{data}\n\nWhat would a short encyclopedia sentence containing this information be?",
          "{answer}"),
        T("Here is data from a knowledge base (subject | property | value): {data}. Describe it in "
          "words.", "{answer}"),
        T("Triples: {data}\nSentence:", "{answer}"),
        T("Write a fluent description that covers every one of these facts: {data}", "{answer}"),
        T("I'm writing a wiki article. Help me phrase this data as prose:\n\n{data}", "{answer}"),
        T("Generate English text from the following DBpedia triples.\n{data}", "{answer}"),
        T("Put these facts into a sentence or two: {data}", "{answer}"),
        T("Text: {answer}\n\nRepresent the facts in this text as triples of the form "
          "subject | property | value, separated by semicolons.", "{data}", inverted=True),
    ),
    metric="bleu",
    description="GEM WebNLG (English); triples joined by '; ', underscores -> spaces.",
)

DATASETS: tuple[DatasetSpec, ...] = (COMMON_GEN, DART, E2E_NLG, WEB_NLG)
