"""Template lint: static checks over a dataset's templates, run over the whole catalogue in tests.

Each problem is one line naming the dataset, the template index and the field, e.g.
    "rte template 3: field 'hypotesis' is not in the dataset's fields (premise, hypothesis, answer)"
"""
from __future__ import annotations

from collections.abc import Iterable

from flan_jax.data.templates.render import placeholders
from flan_jax.data.templates.spec import OPTIONS_PLACEHOLDER, DatasetSpec, Template

TEMPLATES_PER_DATASET = 10


def _lint_templates(
    spec: DatasetSpec, templates: tuple[Template, ...], kind: str
) -> list[str]:
    problems = []
    known = set(spec.fields) | {OPTIONS_PLACEHOLDER}
    for i, t in enumerate(templates):
        where = f"{spec.name} {kind} {i}"
        in_names, tgt_names = placeholders(t.inputs), placeholders(t.targets)
        for name in in_names + tgt_names:
            if name not in known:
                problems.append(
                    f"{where}: field {name!r} is not in the dataset's fields "
                    f"({', '.join(spec.fields)})"
                )
        if OPTIONS_PLACEHOLDER in tgt_names:
            problems.append(f"{where}: {{{OPTIONS_PLACEHOLDER}}} belongs in the inputs only")
        if spec.answer_field in in_names and not t.inverted:
            problems.append(
                f"{where}: answer field {spec.answer_field!r} appears in the inputs "
                "(mark the template inverted=True if that is intended)"
            )
        if not t.inverted and spec.answer_field not in tgt_names:
            problems.append(f"{where}: targets do not name the answer field {spec.answer_field!r}")
        if spec.has_options and not t.inverted and OPTIONS_PLACEHOLDER not in in_names:
            problems.append(
                f"{where}: dataset has answer options but the inputs lack {{{OPTIONS_PLACEHOLDER}}}"
            )
        if not t.inputs.strip() or not t.targets.strip():
            problems.append(f"{where}: empty inputs or targets")
    seen: dict[tuple[str, str], int] = {}
    for i, t in enumerate(templates):
        key = (t.inputs, t.targets)
        if key in seen:
            problems.append(f"{spec.name} {kind} {i}: duplicates template {seen[key]}")
        seen.setdefault(key, i)
    return problems


def lint_dataset(spec: DatasetSpec) -> list[str]:
    """All problems of one dataset's templates (empty list when clean)."""
    problems = []
    if len(spec.templates) != TEMPLATES_PER_DATASET:
        problems.append(
            f"{spec.name}: has {len(spec.templates)} templates, needs {TEMPLATES_PER_DATASET}"
        )
    if spec.answer_field not in spec.fields:
        problems.append(f"{spec.name}: answer field {spec.answer_field!r} not in fields")
    if spec.options_field is not None and spec.options_field not in spec.fields:
        problems.append(f"{spec.name}: options field {spec.options_field!r} not in fields")
    if not any(not t.inverted for t in spec.templates):
        problems.append(f"{spec.name}: every template is inverted")
    problems += _lint_templates(spec, spec.templates, "template")
    problems += _lint_templates(spec, spec.cot_templates, "cot template")
    return problems


def lint_catalogue(specs: Iterable[DatasetSpec]) -> list[str]:
    problems = []
    names: set[str] = set()
    for spec in specs:
        if spec.name in names:
            problems.append(f"{spec.name}: dataset name used twice")
        names.add(spec.name)
        problems += lint_dataset(spec)
    return problems
