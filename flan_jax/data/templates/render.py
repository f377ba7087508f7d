"""Render one example through one template, zero-shot, with or without answer options.

Options rendering (the "options" variant) appends a block after the instruction:

    fields  = {"question": "Is ice cold?", "answer": "yes"}, options ("yes", "no")
    inputs  = "{question}{options_}"
    options variant    -> "Is ice cold?\\n\\nOPTIONS:\\n- yes\\n- no"
    no-options variant -> "Is ice cold?"

Few-shot formatting lives in `flan_jax.data.templates.fewshot`; this module is the single-example core.
"""
from __future__ import annotations

import dataclasses
import string
from collections.abc import Mapping, Sequence
from typing import Any

from flan_jax.errors import FlanJaxError
from flan_jax.data.templates.spec import OPTIONS_PLACEHOLDER, DatasetSpec, Template

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
    options_block: str | None = None,
) -> tuple[str, str]:
    """Returns (inputs, targets) of `fields` through template `template_index` of `spec`.

    `templates` overrides the dataset's templates (e.g. its CoT templates or its few-shot
    templates: anything with `inputs` and `targets`); `options_block` overrides the options
    rendering (`format_options_styled`).
    """
    templates = spec.templates if templates is None else templates
    template = templates[template_index]
    options = example_options(spec, fields)
    values = dict(fields)
    if options_block is None:
        options_block = format_options(options) if (with_options and options) else ""
    values[OPTIONS_PLACEHOLDER] = options_block if with_options else ""
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


# ---------------------------------------------------------------------------------------------
# Varied options formatting (Flan 2022's `format_options_non_deterministic`, flan/v2/
# preprocessors.py): a header, an item marker and an item ending, drawn per example. The
# structure (marker and ending sets, answer relabelling) follows flan/v2/templates.py
# OPT_ITEM_NAME_CANDIDATES / OPT_ITEM_END_STR_CANDIDATES; the header wordings are our own.

OPTION_HEADERS = (
    "", "OPTIONS:", "Answer choices:", "Choices available:", "Pick one:", "Candidates:",
    "Possible responses:", "Select one of:", "The options are:", "One of these:",
    "Your choices:", "Choose among:", "Alternatives:", "Which one?", "Options -",
    "Pick the right one:",
)
_ROMAN = ("i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii", "xiii",
          "xiv", "xv", "xvi", "xvii", "xviii", "xix", "xx", "xxi", "xxii", "xxiii", "xxiv",
          "xxv", "xxvi")
_LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")
_DIGITS = tuple(str(i) for i in range(1, 27))
# Unnumbered markers: the same string before every option.
_BULLETS = ("\n - ", "\n -", "\n -- ", "\n --", "\n + ", "\n +", "\n * ", "\n *", "\n- ",
            "\n+ ", "\n* ", "\n[-] ", "\n[+] ", " - ", " -- ", " + ", " * ", " -", " --", " +",
            " *", " [+] ", " [-] ")
# Numbered markers: a wrapper around the option's label ("{}" is the label).
_ROMAN_WRAPPERS = tuple(lead + w for lead in (" ", "\n") for w in ("{}. ", "[{}] ", "({}) ", "({}). "))
_LABEL_WRAPPERS = ("\n[{}]. ", "\n({}). ", "\n{}). ", "\n ({}). ", "\n {}). ", " ({}). ", " {}). ",
                   " {}. ")


def _numbered(labels: Sequence[str], wrapper: str) -> tuple[str, ...]:
    return tuple(wrapper.format(x) for x in labels)


OPTION_MARKERS: tuple[tuple[str, ...], ...] = (
    tuple((b,) * 26 for b in _BULLETS)
    + tuple(_numbered(tuple(case(r) for r in _ROMAN), w)
            for case in (str.lower, str.upper) for w in _ROMAN_WRAPPERS)
    + tuple(_numbered(labels, w)
            for labels in (_LETTERS, tuple(x.upper() for x in _LETTERS), _DIGITS)
            for w in _LABEL_WRAPPERS)
)
OPTION_ENDINGS = ("", ";", ".")
MAX_VARIED_OPTIONS = 26


@dataclasses.dataclass(frozen=True)
class OptionsStyle:
    """One drawn formatting: indices into OPTION_HEADERS, OPTION_MARKERS and OPTION_ENDINGS."""

    header: int
    marker: int
    ending: int


def format_options_styled(options: Sequence[str], answer: str | None, style: OptionsStyle
                          ) -> tuple[str, str | None, tuple[str, ...] | None]:
    """(options block, answer to show, option labels or None) in `style`.

    The block starts with "\\n\\n" like `format_options`. With numbered markers (every label
    distinct) an answer equal to an option (after stripping) becomes that option's stripped
    marker, as flan/v2 does, and the labels are returned for rank classification:

        ("yes", "no"), "no", marker "\\n({}). " over letters, ending ";", header "Pick one:"
        -> ("\\n\\nPick one:\\n(a). yes;\\n(b). no;", "(b).", ("(a).", "(b)."))
    """
    if len(options) > MAX_VARIED_OPTIONS:
        raise TemplateError(f"{len(options)} options: varied formatting supports at most "
                            f"{MAX_VARIED_OPTIONS}")
    markers = OPTION_MARKERS[style.marker][: len(options)]
    end = OPTION_ENDINGS[style.ending]
    block = "\n\n" + OPTION_HEADERS[style.header] + "".join(
        m + str(o) + end for m, o in zip(markers, options))
    labels = tuple(m.strip() for m in markers)
    if len(set(labels)) < len(labels):  # bullets: nothing to relabel
        return block, answer, None
    stripped = [str(o).strip() for o in options]
    if answer is not None and answer.strip() in stripped:
        answer = labels[stripped.index(answer.strip())]
    return block, answer, labels
