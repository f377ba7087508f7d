"""Field mappings of the FLAN 2021 clusters translation, reading_comprehension,
reading_comprehension_commonsense, coreference, misc and summarization: one hand-written raw
example per dataset in the real TFDS feature layout -> hand-computed fields, dropped rows, and a
few renders checked against hand-written strings.

No TensorFlow needed: raw examples are written as `tfds.as_numpy` yields them (bytes, numpy
scalars and arrays, nested dicts for Sequence({...}) features) and decoded with `to_python`.
"""
from __future__ import annotations

import numpy as np
import pytest

from flan_jax.data.templates.flan2021 import (
    coreference,
    misc,
    reading_comprehension,
    reading_comprehension_commonsense,
    summarization,
    translation,
)
from flan_jax.data.sources.pyvalues import to_python
from flan_jax.data.templates.render import render

MODULES = (translation, reading_comprehension, reading_comprehension_commonsense, coreference,
           misc, summarization)
SPECS = {spec.name: spec for module in MODULES for spec in module.DATASETS}
S = np.array  # byte-string arrays, as TFDS gives Sequence(Text)


def _wmt(code: str, other: str, language: str):
    return ({code: other.encode(), "en": b"Good morning."},
            {"english": "Good morning.", "language": language, "answer": other})


# dataset name -> (raw example as TFDS gives it, expected fields)
CASES = {
    # ---- translation
    "wmt14_enfr": _wmt("fr", "Bonjour.", "French"),
    "wmt16_csen": _wmt("cs", "Dobré ráno.", "Czech"),
    "wmt16_deen": _wmt("de", "Guten Morgen.", "German"),
    "wmt16_fien": _wmt("fi", "Hyvää huomenta.", "Finnish"),
    "wmt16_roen": _wmt("ro", "Bună dimineața.", "Romanian"),
    "wmt16_ruen": _wmt("ru", "Доброе утро.", "Russian"),
    "wmt16_tren": _wmt("tr", "Günaydın.", "Turkish"),
    "para_crawl_enes": _wmt("es", "Buenos días.", "Spanish"),
    # ---- reading_comprehension
    "bool_q": (
        {"passage": b"Ice floats on water.", "question": b"does ice sink in water",
         "label": np.int64(0), "idx": np.int32(4)},
        {"passage": "Ice floats on water.", "question": "Does ice sink in water?", "answer": "no"}),
    "drop": (  # empty main answer: fall back to the first validated answer
        {"passage": b"Bo scored 3 goals and Al 2.", "question": b"How many goals in total?",
         "answer": b"", "validated_answers": S([b"5", b"five"]), "query_id": b"q"},
        {"passage": "Bo scored 3 goals and Al 2.", "question": "How many goals in total?",
         "answer": "5"}),
    "multirc": (
        {"paragraph": b"Sam fed the dog.", "question": b"Who fed the dog?", "answer": b"Sam",
         "label": np.int64(1),
         "idx": {"paragraph": np.int32(0), "question": np.int32(1), "answer": np.int32(2)}},
        {"paragraph": "Sam fed the dog.", "question": "Who fed the dog?", "response": "Sam",
         "answer": "yes"}),
    "openbookqa": (
        {"question": {"stem": b"Plants need", "choice_A": b"sunlight", "choice_B": b"rocks",
                      "choice_C": b"plastic", "choice_D": b"noise"},
         "fact1": b"plants require light to grow", "answerKey": np.int64(0),
         "humanScore": np.float32(1.0), "clarity": np.float32(2.0),
         "turkIdAnonymized": b"t"},
        {"fact": "plants require light to grow", "question": "Plants need",
         "options": ["sunlight", "rocks", "plastic", "noise"], "answer": "sunlight"}),
    "squad": (  # v1.1 row: first gold answer; title underscores become spaces
        {"id": b"1", "title": b"Eiffel_Tower", "context": b"The tower is 330 m tall.",
         "question": b"How tall is the tower?",
         "answers": {"text": S([b"330 m", b"330 m tall"]),
                     "answer_start": np.array([13, 13], np.int32)}},
        {"title": "Eiffel Tower", "context": "The tower is 330 m tall.",
         "question": "How tall is the tower?", "answer": "330 m"}),
    # ---- reading_comprehension_commonsense
    "cosmos_qa": (
        {"context": b"I missed the bus, so I walked.", "question": b"Why did I walk?",
         "answer0": b"I like walking.", "answer1": b"The bus had left.", "answer2": b"It rained.",
         "answer3": b"None of the above choices.", "label": np.int64(1), "id": b"c1"},
        {"context": "I missed the bus, so I walked.", "question": "Why did I walk?",
         "options": ["I like walking.", "The bus had left.", "It rained.",
                     "None of the above choices."], "answer": "The bus had left."}),
    "record": (  # duplicate entity "Ann" kept once, first-seen order
        {"passage": b"Ann met Bo in Rome.\n@highlight\nAnn visits Rome",
         "query": b"@placeholder was happy to see Ann.",
         "entities": S([b"Ann", b"Bo", b"Rome", b"Ann"]), "answers": S([b"Bo", b"Bo"]),
         "idx": {"passage": np.int32(0), "query": np.int32(0)}},
        {"passage": "Ann met Bo in Rome.\n- Ann visits Rome", "query": "___ was happy to see Ann.",
         "options": ["Ann", "Bo", "Rome"], "answer": "Bo",
         "completed": "Bo was happy to see Ann."}),
    # ---- coreference
    "dpr": (
        {"sentence": b"The cat chased the mouse because it was hungry.", "pronoun": b"it",
         "candidates": S([b"The cat", b"the mouse"]), "label": np.int64(0)},
        {"sentence": "The cat chased the mouse because it was hungry.", "pronoun": "it",
         "options": ["The cat", "the mouse"], "answer": "The cat"}),
    "winogrande": (  # label 1 = option2 (TFDS class names "1", "2")
        {"sentence": b"The trophy did not fit in the case because _ was too small.",
         "option1": b"the trophy", "option2": b"the case", "label": np.int64(1)},
        {"sentence": "The trophy did not fit in the case because _ was too small.",
         "options": ["the trophy", "the case"], "answer": "the case"}),
    "wsc273": (
        {"text": b"Joan thanked Susan for the help she had given.", "pronoun_text": b"she",
         "pronoun_start": np.int32(32), "pronoun_end": np.int32(35), "option1": b"Joan",
         "option2": b"Susan", "option1_normalized": b"Joan", "option2_normalized": b"Susan",
         "label": np.int32(1), "idx": np.int32(7)},
        # a continuation, as flan/tasks.py _process_wsc273: text before byte 32 ("she"),
        # options = candidate + the text after byte 35
        {"context": "Joan thanked Susan for the help",
         "options": ["Joan had given.", "Susan had given."], "answer": "Susan had given."}),
    # ---- misc
    "coqa": (  # 3 questions, 2 answers: the unanswered third question is cut
        {"source": b"mctest", "story": b"Tom has a red bike.",
         "questions": S([b"What does Tom have?", b"What color?", b"Is it new?"]),
         "answers": {"input_text": S([b"a bike", b"red"]),
                     "answer_start": np.array([4, 10], np.int32),
                     "answer_end": np.array([18, 13], np.int32)}},
        {"story": "Tom has a red bike.", "questions": "1. What does Tom have?\n2. What color?",
         "answer": "1. a bike\n2. red"}),
    "quac": (  # no-answer marker: target "unanswerable", marker stripped from the context
        {"context": b"He was born in Ohio. CANNOTANSWER", "question": b"Did he have a dog?",
         "followup": b"n", "yesno": b"x", "title": b"John Smith", "section_title": b"Early life",
         "background": b"An actor.",
         "answers": {"text": S([b"CANNOTANSWER"]), "answer_start": np.array([21], np.int32)},
         "orig_answer": {"text": b"CANNOTANSWER", "answer_start": np.int32(21)}},
        {"title": "John Smith", "section": "Early life", "context": "He was born in Ohio.",
         "question": "Did he have a dog?", "answer": "unanswerable"}),
    "trec": (  # coarse labels DESC, ENTY, ABBR, HUM, NUM, LOC
        {"text": b"How far is the Moon?", "label-coarse": np.int64(4),
         "label-fine": np.int64(40)},
        {"question": "How far is the Moon?", "answer": "number"}),
    "cola": (
        {"sentence": b"Him went home.", "label": np.int64(0), "idx": np.int32(2)},
        {"sentence": "Him went home.", "answer": "no"}),
    "wic": (
        {"word": b"bank", "sentence1": b"I sat on the river bank.",
         "sentence2": b"The bank raised rates.", "label": np.int64(0), "idx": np.int32(0),
         "start1": np.int32(19), "end1": np.int32(23), "start2": np.int32(4),
         "end2": np.int32(8)},
        {"word": "bank", "sentence1": "I sat on the river bank.",
         "sentence2": "The bank raised rates.", "answer": "no"}),
    "math_dataset": (  # TFDS keeps a trailing newline on both sides
        {"question": b"Solve 2*x + 4 = 10 for x.\n", "answer": b"3\n"},
        {"question": "Solve 2*x + 4 = 10 for x.", "answer": "3"}),
    "fix_punct": (  # local JSONL row
        {"original": "Hi, Ann! It's late.", "stripped": "Hi Ann Its late"},
        {"stripped": "Hi Ann Its late", "answer": "Hi, Ann! It's late."}),
    # ---- summarization
    "aeslc": (
        {"email_body": b"Please send the report by Friday.\n", "subject_line": b"Report due"},
        {"email": "Please send the report by Friday.", "subject": "Report due"}),
    "ag_news": (  # World, Sports, Business, Sci/Tech
        {"title": b"Rover lands", "description": b"A rover landed on Mars.",
         "label": np.int64(3)},
        {"title": "Rover lands", "text": "A rover landed on Mars.", "answer": "Science/Tech"}),
    "cnn_dailymail": (
        {"article": b"A storm hit the coast on Monday.", "highlights": b"Storm hits coast .",
         "id": b"i", "publisher": b"cnn"},
        {"article": "A storm hit the coast on Monday.", "summary": "Storm hits coast ."}),
    "gigaword": (
        {"document": b"the central bank raised rates on tuesday .",
         "summary": b"bank raises rates"},
        {"document": "the central bank raised rates on tuesday .",
         "summary": "bank raises rates"}),
    "multi_news": (
        {"document": b"Rain fell in Paris. ||||| Paris saw heavy rain. |||||  ",
         "summary": "– Paris got soaked on Sunday.".encode()},
        {"document": "Rain fell in Paris.\n\nParis saw heavy rain.",
         "summary": "Paris got soaked on Sunday."}),
    "newsroom": (
        {"title": b"City opens park", "text": b"The city opened a new park.",
         "summary": b"A new park opened.", "url": b"u", "date": b"d",
         "density_bin": b"extractive", "coverage_bin": b"high", "compression_bin": b"low",
         "density": np.float32(1), "coverage": np.float32(1), "compression": np.float32(1)},
        {"title": "City opens park", "text": "The city opened a new park.",
         "summary": "A new park opened."}),
    "opinion_abstracts_idebate": (
        {"_debate_name": b"Ban cars in cities", "_claim_id": b"c1",
         "_claim": b"Cars pollute city air",
         "_argument_sentences": {"key": S([b"0", b"1"]),
                                 "value": S([b"Exhaust is toxic.", b" Kids breathe it. "])}},
        {"debate": "Ban cars in cities", "argument": "Exhaust is toxic. Kids breathe it.",
         "summary": "Cars pollute city air"}),
    "opinion_abstracts_rotten_tomatoes": (
        {"_movie_name": b"Space Cats", "_movie_id": b"m1",
         "_critic_consensus": b"Silly but fun.",
         "_critics": {"key": S([b"a", b"b"]), "value": S([b"Very silly.", b"Great fun."])}},
        {"movie": "Space Cats", "reviews": "- Very silly.\n- Great fun.",
         "summary": "Silly but fun."}),
    "samsum": (
        {"id": b"s1", "dialogue": b"Ann: Lunch?\nBo: Sure, at 1.",
         "summary": b"Ann and Bo will have lunch at 1."},
        {"dialogue": "Ann: Lunch?\nBo: Sure, at 1.", "summary": "Ann and Bo will have lunch at 1."}),
    "wiki_lingua_en": (
        {"gem_id": b"g", "gem_parent_id": b"g", "source": b"Boil water. Add the pasta.",
         "target": b"Cook pasta in boiling water.", "references": S([b"Cook pasta."]),
         "source_aligned": {"en": b"Boil water. Add the pasta."},
         "target_aligned": {"en": b"Cook pasta in boiling water."}},
        {"article": "Boil water. Add the pasta.", "summary": "Cook pasta in boiling water."}),
    "xsum": (
        {"document": b"The council voted to close the bridge for repairs.",
         "summary": b"A bridge will shut for repairs."},
        {"document": "The council voted to close the bridge for repairs.",
         "summary": "A bridge will shut for repairs."}),
}


def test_every_dataset_has_a_case():
    assert sorted(CASES) == sorted(SPECS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fields(name):
    raw, expected = CASES[name]
    spec = SPECS[name]
    fields = spec.to_fields(to_python(raw))
    assert fields == expected
    assert set(fields) == set(spec.fields)


def test_squad_v2_unanswerable_gets_fixed_text():
    raw = {"id": b"2", "title": b"Moon", "context": b"The Moon orbits Earth.",
           "question": b"Who owns the Moon?", "is_impossible": np.bool_(True),
           "answers": {"text": S([], dtype=bytes), "answer_start": np.array([], np.int32)},
           "plausible_answers": {"text": S([b"Earth"]), "answer_start": np.array([16], np.int32)}}
    fields = SPECS["squad"].to_fields(to_python(raw))
    assert fields["answer"] == "unanswerable"
    assert fields["answer"] == reading_comprehension.UNANSWERABLE


# Rows a mapping must drop: unlabeled test rows, no gold answer, empty text, too few candidates.
DROPPED = [
    ("bool_q", {"passage": "p", "question": "q", "label": -1, "idx": 0}),
    ("multirc", {"paragraph": "p", "question": "q", "answer": "a", "label": -1,
                 "idx": {"paragraph": 0, "question": 0, "answer": 0}}),
    ("drop", {"passage": "p", "question": "q", "answer": "", "validated_answers": [],
              "query_id": "x"}),
    ("squad", {"id": "1", "title": "t", "context": "c", "question": "q",
               "answers": {"text": [], "answer_start": []}}),
    ("cosmos_qa", {"context": "c", "question": "q", "answer0": "a", "answer1": "b",
                   "answer2": "c", "answer3": "d", "label": -1, "id": "x"}),
    ("record", {"passage": "p", "query": "@placeholder q", "entities": ["A"], "answers": [],
                "idx": {"passage": 0, "query": 0}}),
    ("dpr", {"sentence": "s", "pronoun": "it", "candidates": ["A"], "label": 0}),
    ("winogrande", {"sentence": "s _", "option1": "a", "option2": "b", "label": -1}),
    ("wsc273", {"text": "t", "pronoun_text": "it", "option1": "a", "option2": "b", "label": 7,
                "idx": 0, "pronoun_start": 0, "pronoun_end": 1, "option1_normalized": "a",
                "option2_normalized": "b"}),
    ("coqa", {"source": "s", "story": "st", "questions": ["q?"],
              "answers": {"input_text": [], "answer_start": [], "answer_end": []}}),
    ("quac", {"context": "c", "question": "q", "followup": "n", "yesno": "x", "title": "t",
              "section_title": "s", "background": "b", "answers": {"text": [], "answer_start": []},
              "orig_answer": {"text": "", "answer_start": 0}}),
    ("cola", {"sentence": "s", "label": -1, "idx": 0}),
    ("wmt16_deen", {"de": "Hallo", "en": "  "}),
    ("fix_punct", {"original": " ", "stripped": ""}),
    ("xsum", {"document": "d", "summary": ""}),
    ("ag_news", {"title": "t", "description": "d", "label": 4}),
]


@pytest.mark.parametrize("name,raw", DROPPED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(DROPPED)])
def test_unusable_rows_are_dropped(name, raw):
    assert SPECS[name].to_fields(raw) is None


# (dataset, template index, with options, expected inputs, expected targets), written by hand.
RENDERS = [
    ("wmt16_deen", 0, True, 'Translate "Good morning." into German.', "Guten Morgen."),
    ("wmt16_deen", 8, True, "German: Guten Morgen.\nEnglish:", "Good morning."),
    ("bool_q", 4, True,
     "Q: Does ice sink in water?\nContext: Ice floats on water.\n\nOPTIONS:\n- yes\n- no\nA:", "no"),
    ("bool_q", 4, False, "Q: Does ice sink in water?\nContext: Ice floats on water.\nA:", "no"),
    ("dpr", 2, True,
     'In "The cat chased the mouse because it was hungry.", what is meant by "it"?'
     "\n\nOPTIONS:\n- The cat\n- the mouse", "The cat"),
    ("trec", 6, True,
     'Answer type of "How far is the Moon?":\n\nOPTIONS:\n- description\n- entity\n'
     "- abbreviation\n- human\n- number\n- location", "number"),
    ("coqa", 4, False,
     "Text: Tom has a red bike.\n\nQ (numbered):\n1. What does Tom have?\n2. What color?\n\n"
     "A (numbered):", "1. a bike\n2. red"),
    ("fix_punct", 3, False, "Unpunctuated: Hi Ann Its late\nPunctuated:", "Hi, Ann! It's late."),
    ("wsc273", 0, True, "Joan thanked Susan for the help\n\nOPTIONS:\n- Joan had given.\n"
     "- Susan had given.", "Susan had given."),
    ("aeslc", 2, True, "Email:\nPlease send the report by Friday.\n\nSubject:", "Report due"),
    ("samsum", 8, False, "Ann: Lunch?\nBo: Sure, at 1.\n\nTL;DR:",
     "Ann and Bo will have lunch at 1."),
    ("record", 6, True,
     "Context: Ann met Bo in Rome.\n- Ann visits Rome\nCloze: ___ was happy to see Ann."
     "\n\nOPTIONS:\n- Ann\n- Bo\n- Rome", "Bo"),
]


@pytest.mark.parametrize("name,index,with_options,inputs,targets", RENDERS)
def test_render_by_hand(name, index, with_options, inputs, targets):
    raw, fields = CASES[name]
    assert render(SPECS[name], index, fields, with_options=with_options) == (inputs, targets)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_template_renders_the_hand_case(name):
    """All 10 templates, both variants: non-inverted targets are exactly the answer text, and
    only the options variant shows the options block."""
    spec = SPECS[name]
    _, fields = CASES[name]
    for i, template in enumerate(spec.templates):
        with_opts, _ = render(spec, i, fields, with_options=True)
        no_opts, targets = render(spec, i, fields, with_options=False)
        assert with_opts.strip() and no_opts.strip() and targets.strip()
        if not template.inverted:
            assert targets == fields[spec.answer_field]
            assert "OPTIONS:" not in no_opts
            assert ("\n\nOPTIONS:" in with_opts) == spec.has_options


def test_fix_punct_from_para_crawl_as_flan_derives_it():
    # flan/tasks.py: regex_replace(en, r"[^\w\s]", "") with RE2's ASCII classes, so "é" and "°"
    # go too; rows without punctuation are filtered out. Written by hand:
    spec = SPECS["fix_punct"]
    raw = {"en": "Hi, Ann! It's 5°C - café.".encode(), "da": b"Hej"}
    assert spec.to_fields(to_python(raw)) == {"stripped": "Hi Ann Its 5C  caf",
                                              "answer": "Hi, Ann! It's 5°C - café."}
    assert spec.to_fields({"en": "No punctuation here", "da": "x"}) is None
    source = spec.sources["fix_punct"]
    assert (source.builder, source.version, source.splits["train"]) == (
        "para_crawl/enda", "1.2.0", "train[30200:60200]")


def test_fix_punct_falls_back_to_local_files_only_when_they_exist(tmp_path):
    from flan_jax.data.tasks import registry as tasks
    from flan_jax.data.templates.spec import LocalSource, TfdsSource

    source = SPECS["fix_punct"].sources["fix_punct"]
    assert isinstance(tasks.resolve_source(source, str(tmp_path), str(tmp_path)), TfdsSource)
    (tmp_path / "fix_punct").mkdir()
    (tmp_path / "fix_punct" / "train.jsonl").write_text(
        '{"original": "Hi, Ann.", "stripped": "Hi Ann"}\n')
    chosen = tasks.resolve_source(source, str(tmp_path), str(tmp_path))  # para_crawl not prepared
    assert isinstance(chosen, LocalSource) and chosen.file_pattern == "fix_punct/{split}.jsonl"


def test_openbookqa_shows_the_fact_in_every_non_inverted_template():
    spec = SPECS["openbookqa"]
    _, fields = CASES["openbookqa"]
    non_inverted = [i for i, t in enumerate(spec.templates) if not t.inverted]
    assert len(non_inverted) == 9
    for i in non_inverted:
        inputs, _ = render(spec, i, fields, with_options=True)
        assert "plants require light to grow" in inputs, i
