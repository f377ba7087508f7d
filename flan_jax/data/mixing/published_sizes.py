"""The Flan Collection's published training-example counts, as a table of facts.

`flan_jax/assets/published/flan_num_cases.csv` holds, for every flan_jax source of the
`flan2021` and `cot` collections, the counts of google-research/FLAN `flan/v2/constants.py`
(`T_NAME_TO_NUM_CASES`): one per template type, the numbers `flan/v2/mixtures_utils.py` caps
and passes to seqio as mixing rates. A row names the FLAN task the counts belong to (our
`mnli` is FLAN's `mnli_matched`, our `wsc273` stands in FLAN's `wsc` slot, see docs/data.md).

Which template types a variant stands for (flan/v2/mixtures_utils.py, the *_TEMPLATES dicts):

    zs_opt    ("zero_shot",)            one of the two zero-shot-with-options templates
    zs_noopt  ("zero_shot",)
    fs_opt    ("five_shot", "x_shot")   both few-shot-with-options templates are mixed
    fs_noopt  ("x_shot",)

Worked example (xsum: zero_shot 203560, x_shot 192545, five_shot 190400; cap 30,000):
`recipe_rate(counts, "fs_opt", 30000)` = min(190400, 30000) + min(192545, 30000) = 60000.0,
`recipe_rate(counts, "zs_opt", 30000)` = 30000.0; for cb (200 each) fs_opt gives 400.0.

Reading the table reads one small packaged file; nothing is downloaded.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
from importlib import resources

TABLE_FILE = "assets/published/flan_num_cases.csv"
SOURCE = "google-research/FLAN flan/v2/constants.py T_NAME_TO_NUM_CASES"
TEMPLATE_TYPES = ("zero_shot", "x_shot", "five_shot")
VARIANT_TEMPLATE_TYPES: dict[str, tuple[str, ...]] = {
    "zs_opt": ("zero_shot",),
    "zs_noopt": ("zero_shot",),
    "fs_opt": ("five_shot", "x_shot"),
    "fs_noopt": ("x_shot",),
    "eval": ("zero_shot",),
}


@dataclasses.dataclass(frozen=True)
class NumCases:
    """Published training-example counts of one source, per template type."""

    flan_task: str
    zero_shot: int
    x_shot: int
    five_shot: int

    def count(self, template_type: str) -> int:
        return getattr(self, template_type)


@functools.lru_cache(maxsize=1)
def table() -> dict[tuple[str, str], NumCases]:
    """{(collection, source): NumCases} read from the packaged CSV (comment lines start '#')."""
    text = (resources.files("flan_jax") / TABLE_FILE).read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {
        (row["collection"], row["source"]): NumCases(
            row["flan_task"], *(int(row[t]) for t in TEMPLATE_TYPES))
        for row in rows
    }


def lookup(collection: str, source: str) -> NumCases | None:
    return table().get((collection, source))


def recipe_rate(counts: NumCases, variant: str, cap: int | None) -> float:
    """The Flan 2022 rate of a variant: the sum over its template types of min(count, cap)."""
    types = VARIANT_TEMPLATE_TYPES[variant]
    return float(sum(counts.count(t) if cap is None else min(counts.count(t), cap) for t in types))
