"""The two baselines every evaluation report prints beside a model's accuracy.

* majority class: the score of always giving the most frequent gold answer of the evaluated
  examples (computed from the data, so it is the baseline of exactly the rows scored). A model
  that only learnt the answer prior reaches it without reading a prompt: on RTE validation
  (146 "yes" of 277) it is 52.7.
* uniform chance: the expected accuracy of picking one of an example's options uniformly at
  random, the mean over examples of 1 / number of options (50.0 for yes/no, 25.0 for MMLU).

Worked example:

    majority(["yes", "no", "yes", "yes"])              -> {"answer": "yes", "score": 75.0}
    uniform_chance([["yes", "no"], ["a", "b", "c", "d"]]) -> (1/2 + 1/4) / 2 * 100 = 37.5

Ties between equally frequent answers go to the answer seen first, so the result does not
depend on hash order.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from flan_jax.errors import FlanJaxError


def _key(answer: Any) -> str:
    if isinstance(answer, bytes):
        return answer.decode("utf-8")
    if isinstance(answer, (list, tuple)):  # several references: the first one is the gold answer
        return _key(answer[0]) if answer else ""
    return str(answer)


def majority(answers: Sequence[Any]) -> dict[str, Any]:
    """{"answer": most frequent gold answer, "score": its share x100, "count", "n"}."""
    if not answers:
        raise FlanJaxError("majority baseline: no gold answers (empty split?)")
    counts = Counter(_key(a) for a in answers)
    best = max(counts.values())
    answer = next(a for a in counts if counts[a] == best)  # Counter keeps first-seen order
    return {"answer": answer, "score": 100.0 * best / len(answers), "count": best, "n": len(answers)}


def uniform_chance(options: Sequence[Sequence[Any]]) -> float:
    """Mean over examples of 1 / len(options), x100; an example without options is an error."""
    if not options:
        raise FlanJaxError("chance baseline: no examples")
    for i, opts in enumerate(options):
        if len(opts) == 0:
            raise FlanJaxError(f"chance baseline: example {i} has no options")
    return 100.0 * sum(1.0 / len(o) for o in options) / len(options)
