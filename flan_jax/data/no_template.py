"""FLAN's "no template" ablation: the same examples with the instruction wording removed.

Wei et al. 2021 ("Finetuned Language Models Are Zero-Shot Learners", Section 4.3, "Role of
instructions") compare instruction tuning with tuning on the same data where "only inputs and
outputs were given" (e.g. for translation the input is just the sentence). If the tuned model
beats this control on held-out clusters, the gain comes from the instructions, not from seeing
more labelled data or the answer format.

`bare_template(spec)`: the dataset's input fields (those its first template reads, in that
order) joined by newlines, plus the options block where the variant shows one; the targets are
the first template's targets. Worked example (an NLI dataset, first template
"{premise}\\nBased on that, is it true that \\"{hypothesis}\\"?{options_}" -> "{answer}"):

    fields  {"premise": "Omar lives in Lyon.", "hypothesis": "Omar lives in France.", "answer": "yes"}
    inputs  "Omar lives in Lyon.\\nOmar lives in France.\\n\\nOPTIONS:\\n- yes\\n- it is ...\\n- no"
    targets "yes"

Tasks are registered under the collection `<collection>_notemplate` with the same sources and
variants, so a mixture's rates carry over leaf for leaf (`register_no_template_mixture`).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from flan_jax.data.render import placeholders
from flan_jax.data.spec import OPTIONS_PLACEHOLDER, DatasetSpec, Template
from flan_jax.errors import FlanJaxError

SUFFIX = "_notemplate"


def bare_template(spec: DatasetSpec) -> Template:
    """Input fields joined by newlines (+ the options block); the first template's targets."""
    first = next((t for t in spec.templates if not t.inverted), None)
    if first is None:
        raise FlanJaxError(f"dataset {spec.name!r}: no non-inverted template to take fields from")
    fields = [f for f in dict.fromkeys(placeholders(first.inputs))
              if f not in (OPTIONS_PLACEHOLDER, spec.answer_field)]
    options = "{" + OPTIONS_PLACEHOLDER + "}" if spec.has_options else ""
    return Template("\n".join("{" + f + "}" for f in fields) + options, first.targets)


def no_template_spec(spec: DatasetSpec) -> DatasetSpec:
    """`spec` with its templates replaced by the one bare template."""
    return dataclasses.replace(spec, templates=(bare_template(spec),))


def register_no_template_mixture(name: str, leaves: Sequence[Any], specs: dict[str, DatasetSpec], *,
                                 vocabulary: Any = None, **task_kwargs: Any) -> list[tuple[str, float]]:
    """Register seqio mixture `name`: every leaf task (`collection.source:variant`, with
    `specs[source]` its dataset) replaced by its bare twin at the same rate."""
    import seqio  # noqa: PLC0415

    from flan_jax.data import tasks  # noqa: PLC0415

    entries = []
    for leaf in leaves:
        collection, _, rest = leaf.task.partition(".")
        source, _, variant = rest.partition(":")
        if source not in specs:
            raise FlanJaxError(f"no-template control: no dataset for task {leaf.task!r}")
        names = tasks.register_dataset_tasks(no_template_spec(specs[source]), vocabulary,
                                             collection=collection + SUFFIX, variants=[variant], **task_kwargs)
        entries += [(n, float(leaf.share)) for n in names if n.partition(".")[2].partition(":")[0] == source]
    if name in seqio.MixtureRegistry.names():
        seqio.MixtureRegistry.remove(name)
    seqio.MixtureRegistry.add(name, entries)
    return entries
