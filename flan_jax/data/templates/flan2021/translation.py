"""FLAN 2021 translation cluster: WMT'14 French, WMT'16 (cs, de, fi, ro, ru, tr) and ParaCrawl es.

All eight datasets share one mapping and one set of templates; only the language differs. The
answer field is always the non-English side, so templates that translate *into* English show it
in the inputs and are marked `inverted=True` (they still make good training data; evaluation
uses the English -> other direction).

Worked example (wmt16_deen, raw TFDS row decoded by `to_python`):

    {"de": "Das Haus ist klein.", "en": "The house is small."}
 -> {"english": "The house is small.", "language": "German", "answer": "Das Haus ist klein."}
    template 0 -> inputs  'Translate "The house is small." into German.'
                  targets 'Das Haus ist klein.'

Rows where either side is empty (WMT has a few blank lines) are dropped.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flan_jax.data.templates.spec import DatasetSpec, FieldMapping, Fields, Template, TfdsSource

CLUSTER = "translation"
_WMT_SPLITS = {"train": "train", "validation": "validation", "test": "test"}
# ParaCrawl has only a train split: hold out its last 1000 pairs for validation.
_PARACRAWL_SPLITS = {"train": "train[:-1000]", "validation": "train[-1000:]"}


def _pair_fields(code: str, language: str) -> FieldMapping:
    """Mapping for a TFDS Translation row {code: text, "en": text}."""

    def to_fields(ex: Mapping[str, Any]) -> Fields | None:
        english, other = ex["en"].strip(), ex[code].strip()
        if not english or not other:
            return None
        return {"english": english, "language": language, "answer": other}

    return to_fields


# English -> other (templates 0-5) and other -> English (6-9, inverted).
TEMPLATES = (
    Template('Translate "{english}" into {language}.', "{answer}"),
    Template("{english}\n\nHow would you say this in {language}?", "{answer}"),
    Template("English: {english}\n{language}:", "{answer}"),
    Template(
        "Please give a {language} version of the following sentence:\n{english}", "{answer}"
    ),
    Template(
        "I need this text in {language} for a colleague. Can you translate it?\n\n{english}",
        "{answer}",
    ),
    Template("Render in {language}: {english}", "{answer}"),
    Template("Translate from {language} to English:\n\n{answer}", "{english}", inverted=True),
    Template("{answer}\n\nWhat does this {language} text mean in English?", "{english}",
             inverted=True),
    Template("{language}: {answer}\nEnglish:", "{english}", inverted=True),
    Template(
        "A friend wrote to me in {language}:\n{answer}\n\nGive me an English translation.",
        "{english}",
        inverted=True,
    ),
)

FIELDS = ("english", "language", "answer")


def _spec(name: str, builder: str, version: str, code: str, language: str,
          splits: Mapping[str, str]) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        cluster=CLUSTER,
        sources={name: TfdsSource(builder, version, splits)},
        to_fields=_pair_fields(code, language),
        fields=FIELDS,
        templates=TEMPLATES,
        metric="bleu",
        description=f"English <-> {language} sentence pairs ({builder}).",
    )


DATASETS: tuple[DatasetSpec, ...] = (
    _spec("wmt14_enfr", "wmt14_translate/fr-en", "1.0.0", "fr", "French", _WMT_SPLITS),
    _spec("wmt16_csen", "wmt16_translate/cs-en", "1.0.0", "cs", "Czech", _WMT_SPLITS),
    _spec("wmt16_deen", "wmt16_translate/de-en", "1.0.0", "de", "German", _WMT_SPLITS),
    _spec("wmt16_fien", "wmt16_translate/fi-en", "1.0.0", "fi", "Finnish", _WMT_SPLITS),
    _spec("wmt16_roen", "wmt16_translate/ro-en", "1.0.0", "ro", "Romanian", _WMT_SPLITS),
    _spec("wmt16_ruen", "wmt16_translate/ru-en", "1.0.0", "ru", "Russian", _WMT_SPLITS),
    _spec("wmt16_tren", "wmt16_translate/tr-en", "1.0.0", "tr", "Turkish", _WMT_SPLITS),
    _spec("para_crawl_enes", "para_crawl/enes", "1.2.0", "es", "Spanish", _PARACRAWL_SPLITS),
)
