"""What a mixture file declares and what resolving it returns: the types of data/mixing/.

    MixtureDecl("m", "mixtures/x.toml", "examples_proportional", ({"task": "a.b:zs_opt"},), cap=3000)
    Leaf("a.b:zs_opt", share=0.75, collection="a", cluster="c", num_examples=5000, size_known=True)

`RATE_KINDS` and `SIZE_SOURCES` are the values a `[mixture]` table's `rate` and `size_source`
may take; MixtureError is every mixture problem (one line naming the file and the entry).
Parsed by mixture_parsing.py, resolved by mixture_rates.py, sized by mixture_sizes.py.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from flan_jax.errors import FlanJaxError

RATE_KINDS = ("examples_proportional", "temperature", "equal", "weights")
SIZE_SOURCES = ("data", "published")


class MixtureError(FlanJaxError):
    """A mixture file problem: the message names the file and the entry."""


@dataclasses.dataclass(frozen=True)
class MixtureDecl:
    name: str
    file: str
    rate: str
    include: tuple[Mapping[str, Any], ...]
    cap: int | None = None
    temperature: float = 1.0
    description: str = ""
    size_source: str = "data"
    # audit_filter.py: kinds of audit flags whose examples are dropped, and the evaluation
    # mixture/task (and split) that defines contamination
    drop_flagged: tuple[str, ...] = ()
    audit_eval: str | None = None
    audit_eval_split: str = "validation"


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One task of a resolved mixture with its share of the examples drawn."""

    task: str
    share: float
    collection: str
    cluster: str
    num_examples: int | None  # train examples, None when unknown offline
    size_known: bool
    # "tfds", "local_file", "procedural", "override", "published: <repository file>",
    # "unknown" (counted at the cap), or "" for rate = "equal" mixtures (sizes unused).
    size_source: str = ""
    # examples audited and dropped by the mixture's `drop_flagged` option (audit_filter.py):
    # {"audited", "duplicates", "near_duplicates", "contaminated", "dropped"}; empty without it
    dropped: Mapping[str, int] = dataclasses.field(default_factory=dict, compare=False)
