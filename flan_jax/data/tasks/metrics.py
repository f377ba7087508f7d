"""Per-task postprocessors and metrics, chosen by `DatasetSpec.metric`, in seqio's conventions.

seqio conventions, so these plug into `seqio.Task(metric_fns=..., postprocess_fn=...)` and
`seqio.Evaluator` unchanged:

* a metric function is `metric_fn(targets, predictions) -> {name: float}` over whole lists
  (corpus level), scores on a 0-100 scale as T5's metrics report them;
* a postprocessor is `postprocess_fn(text, example=None, is_target=False) -> value`, applied to
  each decoded prediction and to each target before the metric sees them.

How a task declares them: a DatasetSpec sets `metric` to one of METRICS; `metric_fns_for(spec)`
and `postprocessor_for(spec, cot=...)` return the functions. A task registered with them passes
`metric_fns=metric_fns_for(spec), postprocess_fn=postprocessor_for(spec, cot)` to
`seqio.TaskRegistry.add`; `flan_jax.eval.evaluate` calls the same functions directly.

Worked example (exact_match normalizes case, punctuation, articles and spaces; f1 is bag-of-
tokens overlap after the same normalization, SQuAD style):

    exact_match(["The park."], ["the  park"])      -> {"exact_match": 100.0}
    f1(["the big red barn"], ["red barn door"])    -> tokens {big, red, barn} vs {red, barn, door}:
                                                      p = 2/3, r = 2/3 -> {"f1": 66.67}
    parse_cot_answer("3 + 4 = 7. So the answer is 7.")   -> "7"
"""
from __future__ import annotations

import collections
import re
import string
from collections.abc import Callable, Sequence
from typing import Any

from flan_jax.data.templates.spec import COT_ANSWER_MARKER, DatasetSpec
from flan_jax.errors import FlanJaxError

MetricFn = Callable[[Sequence[Any], Sequence[Any]], dict[str, float]]
Target = str | Sequence[str]  # one reference, or several (max over references for em/f1)


# ----------------------------------------------------------------------------- postprocessing


def parse_cot_answer(text: str, marker: str = COT_ANSWER_MARKER) -> str:
    """The answer of a chain-of-thought output: the text after the LAST `marker`, trimmed of
    spaces, a leading colon and a trailing period. Without the marker, the whole trimmed text
    (a model that skipped the reasoning is still scored on what it said).

        "x is 3. So the answer is 4. So the answer is 5." -> "5"
        "So the answer is: (B) yes."                       -> "(B) yes"
    """
    _, found, tail = text.rpartition(marker)
    answer = tail if found else text
    answer = answer.strip().lstrip(":").strip()
    return answer[:-1].rstrip() if answer.endswith(".") else answer


def strip_text(text: Any, example: Any = None, is_target: bool = False) -> str:
    """The default postprocessor: bytes -> str, outer whitespace removed."""
    del example, is_target
    return _as_str(text).strip()


def cot_postprocessor(text: Any, example: Any = None, is_target: bool = False) -> str:
    """CoT tasks: keep only the final answer (targets carry the marker too)."""
    del example, is_target
    return parse_cot_answer(_as_str(text))


def _as_str(text: Any) -> str:
    return text.decode("utf-8") if isinstance(text, bytes) else str(text)


# ----------------------------------------------------------------------------- normalization


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lower case, drop punctuation and articles, squeeze whitespace.

        "The  Park!" -> "park"
    """
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _references(target: Target) -> list[str]:
    return [target] if isinstance(target, str) else list(target)


def _check(targets: Sequence[Any], predictions: Sequence[Any], name: str) -> None:
    if len(targets) != len(predictions):
        raise FlanJaxError(f"{name}: {len(targets)} targets but {len(predictions)} predictions")
    if not targets:
        raise FlanJaxError(f"{name}: no examples to score (empty split?)")


# ----------------------------------------------------------------------------- metrics


def accuracy(targets: Sequence[Any], predictions: Sequence[Any]) -> dict[str, float]:
    """Share of predictions equal to their target (after postprocessing), x100."""
    _check(targets, predictions, "accuracy")
    hits = sum(t == p for t, p in zip(targets, predictions))
    return {"accuracy": 100.0 * hits / len(targets)}


def exact_match(targets: Sequence[Target], predictions: Sequence[str]) -> dict[str, float]:
    """Normalized exact match (max over references), x100."""
    _check(targets, predictions, "exact_match")
    hits = sum(
        max(normalize_answer(r) == normalize_answer(p) for r in _references(t))
        for t, p in zip(targets, predictions)
    )
    return {"exact_match": 100.0 * hits / len(targets)}


def token_f1_single(reference: str, prediction: str) -> float:
    """SQuAD F1 of one pair in [0, 1]: harmonic mean of token precision and recall over the
    multiset intersection of normalized tokens; two empty strings score 1."""
    ref, pred = normalize_answer(reference).split(), normalize_answer(prediction).split()
    if not ref or not pred:
        return float(ref == pred)
    common = sum((collections.Counter(ref) & collections.Counter(pred)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def f1(targets: Sequence[Target], predictions: Sequence[str]) -> dict[str, float]:
    """Mean SQuAD token F1 (max over references), x100."""
    _check(targets, predictions, "f1")
    total = sum(max(token_f1_single(r, p) for r in _references(t)) for t, p in zip(targets, predictions))
    return {"f1": 100.0 * total / len(targets)}


def rouge(targets: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure (rouge-score, Porter stemming), x100."""
    _check(targets, predictions, "rouge")
    from rouge_score import rouge_scorer  # noqa: PLC0415  (imports nltk: only when used)

    kinds = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(list(kinds), use_stemmer=True)
    sums = dict.fromkeys(kinds, 0.0)
    for t, p in zip(targets, predictions):
        scores = scorer.score(_references(t)[0], p)
        for k in kinds:
            sums[k] += scores[k].fmeasure
    return {k: 100.0 * v / len(targets) for k, v in sums.items()}


def bleu(targets: Sequence[Target], predictions: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU (sacrebleu, exponential smoothing, "intl" tokenizer as in T5)."""
    _check(targets, predictions, "bleu")
    import sacrebleu  # noqa: PLC0415

    refs = [_references(t) for t in targets]
    num_refs = max(len(r) for r in refs)
    streams = [[r[i] if i < len(r) else r[0] for r in refs] for i in range(num_refs)]
    result = sacrebleu.corpus_bleu(list(predictions), streams, smooth_method="exp",
                                   tokenize="intl", force=True)
    return {"bleu": float(result.score)}


METRICS: dict[str, MetricFn] = {
    "accuracy": accuracy, "exact_match": exact_match, "f1": f1, "rouge": rouge, "bleu": bleu,
}
# The number each metric puts in per-cluster tables and plots.
HEADLINE = {"accuracy": "accuracy", "exact_match": "exact_match", "f1": "f1",
            "rouge": "rougeL", "bleu": "bleu"}


def metric_fns_for(spec: DatasetSpec) -> list[MetricFn]:
    """The seqio metric functions of a dataset, from `spec.metric`."""
    if spec.metric not in METRICS:
        raise FlanJaxError(
            f"dataset {spec.name!r}: unknown metric {spec.metric!r}; expected one of {sorted(METRICS)}")
    return [METRICS[spec.metric]]


def postprocessor_for(spec: DatasetSpec, cot: bool = False) -> Callable[..., str]:
    """`cot_postprocessor` for chain-of-thought templates, else `strip_text`."""
    del spec  # one rule per template kind today; the spec is the place for per-dataset rules
    return cot_postprocessor if cot else strip_text


def headline(metric: str, scores: dict[str, float]) -> float:
    """The one number of a task's scores that tables and plots show."""
    return float(scores[HEADLINE.get(metric, metric)])
