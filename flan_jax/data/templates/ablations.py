"""FLAN's template ablations as DatasetSpec rewrites (Wei et al. 2021, "Finetuned Language Models
Are Zero-Shot Learners", section 4.3, "Role of instructions"): the same rows, rates and answers,
with the 10 instructions replaced.

* `no_template_spec`: the input fields only ("no template"), one per line;
* `dataset_name_spec`: the input fields after the dataset and cluster names ("dataset name"),
  FLAN's "[Translation: WMT'14 to French] The dog runs." style.

The options block is kept in both, so a model tuned on a rewrite sees the same options as one
tuned on the instructions. Worked example (an NLI dataset, fields premise, hypothesis, answer):

    fields {"premise": "A cat sat.", "hypothesis": "An animal sat.", "answer": "yes"}
    no_template_spec   zs_noopt inputs -> "A cat sat.\nAn animal sat."
    dataset_name_spec  zs_noopt inputs -> "[nli: rte]\nA cat sat.\nAn animal sat."
                       zs_opt adds "\n\nOPTIONS:\n- yes\n- no"; targets -> "yes"
"""
from __future__ import annotations

import dataclasses

from flan_jax.data.templates.spec import OPTIONS_PLACEHOLDER, DatasetSpec, Template


def _input_fields(spec: DatasetSpec) -> list[str]:
    return [f for f in spec.fields if f not in (spec.answer_field, spec.options_field)]


def _one_template(spec: DatasetSpec, prefix: str, what: str) -> DatasetSpec:
    inputs = prefix + "\n".join("{" + f + "}" for f in _input_fields(spec)) + "{" + OPTIONS_PLACEHOLDER + "}"
    return dataclasses.replace(spec, templates=(Template(inputs, "{" + spec.answer_field + "}"),),
                               description=f"{spec.description} ({what})")


def no_template_spec(spec: DatasetSpec) -> DatasetSpec:
    """`spec` with one bare template: its input fields joined by newlines, in `spec.fields`
    order (answer and choices excluded), then the options block where a variant shows it."""
    return _one_template(spec, "", "no template: inputs only")


def dataset_name_spec(spec: DatasetSpec) -> DatasetSpec:
    """`spec` with one template: "[<cluster>: <dataset>]" on the first line, then the inputs."""
    return _one_template(spec, f"[{spec.cluster}: {spec.name}]\n", "dataset name only")


ABLATIONS = {"instructions": lambda spec: spec, "no_template": no_template_spec,
             "dataset_name": dataset_name_spec}
