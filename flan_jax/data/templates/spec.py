"""What a dataset is to flan_jax: a source, a field mapping and 10 instruction templates.

These are plain frozen dataclasses with no behaviour beyond validation, so the catalogue files
(`flan_jax/data/templates/flan2021/<cluster>.py`, `flan_jax/data/templates/flan_mini/`) read as data.

Template syntax
---------------
A template is a pair of Python format strings over the dataset's *fields* (the dict returned by
`DatasetSpec.to_fields`). Literal braces are doubled (`{{`, `}}`). Two placeholders are special:

* `{options_}` (inputs only) renders the answer options block in the "options" variant and the empty
  string in the "no options" variant. Every template of a dataset with options must contain it.
* the dataset's `answer_field` (usually `{answer}`) is what the targets say. It must not appear in the
  inputs unless the template is marked `inverted=True` (the task is turned around, e.g. "write a
  question whose answer is {answer}").

Worked example (dataset "rte", options ("yes", "no")):

    fields   = {"premise": "A cat sat.", "hypothesis": "An animal sat.", "answer": "yes"}
    template = Template("{premise}\\nDoes this imply \\"{hypothesis}\\"?{options_}", "{answer}")
    options variant    -> inputs  'A cat sat.\\nDoes this imply "An animal sat."?\\n\\nOPTIONS:\\n- yes\\n- no'
                          targets 'yes'
    no-options variant -> inputs  'A cat sat.\\nDoes this imply "An animal sat."?'
                          targets 'yes'
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

Fields = dict[str, Any]
# A mapping from one raw source example (TFDS features decoded to Python: bytes -> str,
# numpy scalars -> int/float, sequences -> lists, nested dicts kept) to template fields.
# Returning None drops the example (e.g. an unanswerable row a dataset cannot use).
FieldMapping = Callable[[Mapping[str, Any]], Fields | None]

OPTIONS_PLACEHOLDER = "options_"
# CoT targets end with this marker followed by the answer; evaluation parses the text after its
# last occurrence (see flan_jax/eval).
COT_ANSWER_MARKER = "So the answer is"


@dataclasses.dataclass(frozen=True)
class Template:
    """One instruction phrasing: `inputs` and `targets` format strings over the fields."""

    inputs: str
    targets: str
    # The template turns the task around (its inputs may show the answer field).
    inverted: bool = False


@dataclasses.dataclass(frozen=True)
class FewShotTemplate:
    """One few-shot phrasing, with the framing Flan 2022 puts around every exemplar.

    An exemplar is written `inputs_prefix + inputs + x_y_delimiter + targets_prefix + targets +
    example_separator` (the structure of `FewShotPattern` in google-research/FLAN
    flan/v2/templates.py; see flan_jax.data.templates.fewshot for the three ways exemplars are joined).
    `in_template_mix`: whether the "template mix" setting may draw this template.
    """

    inputs: str
    targets: str
    inputs_prefix: str = ""
    targets_prefix: str = ""
    x_y_delimiter: str = "\n\n"
    example_separator: str = "\n\n\n"
    in_template_mix: bool = True
    inverted: bool = False


@dataclasses.dataclass(frozen=True)
class TfdsSource:
    """A tensorflow-datasets builder, e.g. `TfdsSource("super_glue/rte", "1.0.2", ...)`."""

    builder: str  # "name/config" as tfds spells it
    version: str  # "1.0.2": pinned so the feature keys the mapping reads are the ones tested
    # Our split name -> the TFDS split expression ("train", "validation", "test").
    splits: Mapping[str, str]
    # Read instead when the TFDS data is not prepared and these local files exist (the rows
    # must map through the same `to_fields`); see flan_jax.data.tasks.registry.resolve_source.
    fallback: "LocalSource | None" = None

    @property
    def tfds_name(self) -> str:
        return f"{self.builder}:{self.version}"


@dataclasses.dataclass(frozen=True)
class LocalSource:
    """Rows from local files the user points to (for datasets TFDS does not carry).

    `file_pattern` is relative to the data directory given at registration time
    (`--data_dir` / `FLAN_JAX_DATA_DIR`), with `{split}` replaced by the split name,
    e.g. "fix_punct/{split}.jsonl".
    """

    file_pattern: str
    format: str  # "jsonl" | "tsv" | "alpaca" | "chat"
    columns: tuple[str, ...]  # the keys every row must have (tsv: the column order)
    splits: tuple[str, ...] = ("train", "validation")
    # Where a researcher gets the data and how to convert it; shown by `flan-jax catalog`.
    how_to_obtain: str = ""


@dataclasses.dataclass(frozen=True)
class ProceduralSource:
    """Rows made by code in the repo (flan-mini): `generate(seed, n)` returns n field dicts.

    Each split has its own seed, so the splits are disjoint draws and a split is the same on
    every machine and in every process.
    """

    generate: Callable[[int, int], list[Fields]]
    split_sizes: Mapping[str, int]
    split_seeds: Mapping[str, int]

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.split_sizes)


Source = TfdsSource | LocalSource | ProceduralSource


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A dataset of the catalogue: where rows come from, how they become fields, its templates.

    `sources` maps a seqio task base name to a source. Most datasets have one
    (`{"rte": TfdsSource(...)}`); ANLI has three rounds and ARC two levels that share the
    dataset's templates (`{"anli_r1": ..., "anli_r2": ..., "anli_r3": ...}`).
    """

    name: str
    cluster: str
    sources: Mapping[str, Source]
    to_fields: FieldMapping
    fields: tuple[str, ...]  # every key to_fields returns (the lint checks templates against it)
    templates: tuple[Template, ...]
    answer_field: str = "answer"
    # Fixed answer options for every example, e.g. ("yes", "it is not possible to tell", "no").
    options: tuple[str, ...] | None = None
    # Or a field holding each example's own options (a list of str), e.g. multiple choice.
    options_field: str | None = None
    # Evaluation: "accuracy" (rank classification / exact answer), "exact_match", "f1",
    # "rouge", "bleu".
    metric: str = "accuracy"
    # Chain-of-thought templates (targets end in COT_ANSWER_MARKER + answer); empty for most.
    cot_templates: tuple[Template, ...] = ()
    # Few-shot templates (Flan 2022 keeps them apart from the zero-shot ones); empty: derived
    # from `templates` by flan_jax.data.templates.fewshot.fewshot_templates.
    fewshot_templates: tuple[FewShotTemplate, ...] = ()
    description: str = ""

    def __post_init__(self):
        if not self.sources:
            raise ValueError(f"dataset {self.name!r}: no sources")
        if self.options is not None and self.options_field is not None:
            raise ValueError(f"dataset {self.name!r}: set options or options_field, not both")

    @property
    def has_options(self) -> bool:
        return self.options is not None or self.options_field is not None

    @property
    def tfds_backed(self) -> bool:
        return all(isinstance(s, TfdsSource) for s in self.sources.values())
