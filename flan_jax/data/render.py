"""Render one example through one template, zero-shot, with or without answer options.

Options rendering (the "options" variant) appends a block after the instruction:

    fields  = {"question": "Is ice cold?", "answer": "yes"}, options ("yes", "no")
    inputs  = "{question}{options_}"
    options variant    -> "Is ice cold?\\n\\nOPTIONS:\\n- yes\\n- no"
    no-options variant -> "Is ice cold?"

Few-shot formatting lives in `flan_jax.data.fewshot`; this module is the single-example core.
"""
from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

from flan_jax.errors import FlanJaxError
from flan_jax.data.spec import OPTIONS_PLACEHOLDER, DatasetSpec, Template

OPTIONS_HEADER = "\n\nOPTIONS:"
OPTION_BULLET = "\n- "


class TemplateError(FlanJaxError):
    """A template cannot be rendered against an example (names dataset, template and field)."""


def placeholders(format_string: str) -> tuple[str, ...]:
    """The field names a format string refers to, in order ("{a} and {b}" -> ("a", "b"))."""
    names = []
    for _, name, _, _ in string.Formatter().parse(format_string):
        if name is not None:
            names.append(name)
    return tuple(names)


def format_options(options: Sequence[str]) -> str:
    """("yes", "no") -> "\\n\\nOPTIONS:\\n- yes\\n- no"."""
    return OPTIONS_HEADER + "".join(OPTION_BULLET + str(o) for o in options)


def example_options(spec: DatasetSpec, fields: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The answer options of one example: the dataset's fixed ones or the example's own."""
    if spec.options is not None:
        return tuple(spec.options)
    if spec.options_field is not None:
        return tuple(str(o) for o in fields[spec.options_field])
    return None


def render(
    spec: DatasetSpec,
    template_index: int,
    fields: Mapping[str, Any],
    *,
    with_options: bool,
    templates: Sequence[Template] | None = None,
) -> tuple[str, str]:
    """Returns (inputs, targets) of `fields` through template `template_index` of `spec`.

    `templates` overrides the dataset's templates (e.g. its CoT templates).
    """
    templates = spec.templates if templates is None else templates
    template = templates[template_index]
    options = example_options(spec, fields)
    values = dict(fields)
    values[OPTIONS_PLACEHOLDER] = format_options(options) if (with_options and options) else ""
    try:
        inputs = template.inputs.format(**values)
        targets = template.targets.format(**values)
    except KeyError as e:
        raise TemplateError(
            f"dataset {spec.name!r}, template {template_index}: field {e.args[0]!r} is not in "
            f"the example (fields: {sorted(fields)})"
        ) from None
    except (IndexError, ValueError) as e:
        raise TemplateError(f"dataset {spec.name!r}, template {template_index}: {e}") from None
    return inputs, targets
