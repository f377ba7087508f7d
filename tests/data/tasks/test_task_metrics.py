"""Metrics on hand-computed examples; postprocessors; the metric table."""
import math

import pytest

from flan_jax.data.templates.spec import DatasetSpec, ProceduralSource, Template
from flan_jax.errors import FlanJaxError
from flan_jax.data.tasks import metrics


def test_accuracy_counts_equal_strings():
    assert metrics.accuracy(["a", "b", "c", "d"], ["a", "x", "c", "y"]) == {"accuracy": 50.0}


def test_exact_match_normalizes_case_punctuation_articles_spaces():
    assert metrics.normalize_answer("The  Park!") == "park"
    got = metrics.exact_match(["The park.", "an apple", "12,345", "Omar"], ["the  park", "Apple", "12345", "Omer"])
    assert got == {"exact_match": 75.0}
    # several references: the best one counts
    assert metrics.exact_match([["cat", "the feline"]], ["Feline"]) == {"exact_match": 100.0}


def test_token_f1_by_hand():
    # {big, red, barn} vs {red, barn, door} ("the" dropped): p = r = 2/3 -> f1 = 2/3
    assert math.isclose(metrics.token_f1_single("the big red barn", "red barn door"), 2 / 3)
    # repeated tokens are matched as a multiset: ref [a1 a1 b] vs pred [a1 b b]: common 2, p = r = 2/3
    assert math.isclose(metrics.token_f1_single("x x y", "x y y"), 2 / 3)
    assert metrics.token_f1_single("", "") == 1.0
    assert metrics.token_f1_single("cat", "") == 0.0
    got = metrics.f1(["the big red barn", "cat"], ["red barn door", "dog"])
    assert math.isclose(got["f1"], 100 * (2 / 3 + 0) / 2)


def test_rouge_by_hand():
    # ref 6 tokens, pred 3 in order: rouge1 p=1 r=1/2; bigrams 2 of ref's 5; LCS 3
    got = metrics.rouge(["the cat sat on the mat"], ["the cat sat"])
    assert math.isclose(got["rouge1"], 100 * 2 / 3, rel_tol=1e-6)
    assert math.isclose(got["rouge2"], 100 * (2 * 1 * 0.4 / 1.4), rel_tol=1e-6)
    assert math.isclose(got["rougeL"], 100 * 2 / 3, rel_tol=1e-6)


def test_bleu_by_hand():
    # n-gram precisions 5/6, 3/5, 2/4, 1/3, same length (brevity penalty 1)
    got = metrics.bleu(["the cat sat on a mat"], ["the cat sat on the mat"])
    want = 100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert math.isclose(got["bleu"], want, rel_tol=1e-4)
    assert math.isclose(metrics.bleu(["a b c d e"], ["a b c d e"])["bleu"], 100.0)


def test_postprocessors():
    assert metrics.strip_text(b"  yes \n") == "yes"
    assert metrics.cot_postprocessor("It rains. So the answer is yes.") == "yes"
    assert metrics.parse_cot_answer("So the answer is 4. So the answer is 5.") == "5"


def _spec(metric):
    src = ProceduralSource(lambda seed, n: [], {"train": 1}, {"train": 0})
    return DatasetSpec("toy", "toy_cluster", {"toy": src}, lambda r: r, ("x", "answer"),
                       (Template("{x}", "{answer}"),), metric=metric)


def test_metric_fns_follow_the_spec_and_reject_unknown_metrics():
    for name, fn in metrics.METRICS.items():
        assert metrics.metric_fns_for(_spec(name)) == [fn]
    with pytest.raises(FlanJaxError, match="toy.*unknown metric 'recall'"):
        metrics.metric_fns_for(_spec("recall"))
    assert metrics.postprocessor_for(_spec("exact_match"), cot=True) is metrics.cot_postprocessor


def test_empty_or_mismatched_inputs_are_errors():
    with pytest.raises(FlanJaxError, match="no examples"):
        metrics.accuracy([], [])
    with pytest.raises(FlanJaxError, match="2 targets but 1 predictions"):
        metrics.f1(["a", "b"], ["a"])
