"""Majority-class and uniform-chance baselines, and grouped scores, against hand counts."""
import numpy as np
import pytest

from flan_jax.errors import FlanJaxError
from flan_jax.eval import baselines, bootstrap, grouped_scores


def test_majority_and_chance_by_hand():
    assert baselines.majority(["yes", "no", "yes", "yes"]) == {"answer": "yes", "score": 75.0, "count": 3, "n": 4}
    assert baselines.majority([b"no", "yes"])["answer"] == "no"  # a tie: the first seen
    # RTE validation's label counts (146 entailment of 277, HF glue/rte): always "yes" scores 52.7
    assert round(baselines.majority(["yes"] * 146 + ["no"] * 131)["score"], 1) == 52.7
    assert baselines.uniform_chance([["yes", "no"], ["a", "b", "c", "d"]]) == pytest.approx(37.5)


def test_baselines_bad_inputs():
    with pytest.raises(FlanJaxError, match="no gold answers"):
        baselines.majority([])
    with pytest.raises(FlanJaxError, match="example 1 has no options"):
        baselines.uniform_chance([["a"], []])


def test_grouped_scores_worked_example():
    got = grouped_scores.summarize({"algebra": [1, 0, 1, 1], "physics": [0, 1], "law": [1]},
                                   {"algebra": "STEM", "physics": "STEM", "law": "humanities"})
    assert got["subjects"]["algebra"]["score"] == 75.0 and got["subjects"]["physics"]["n"] == 2
    stem = got["categories"]["STEM"]
    assert stem["macro"]["score"] == pytest.approx(62.5) and stem["micro"]["score"] == pytest.approx(400 / 6)
    assert got["macro"]["score"] == pytest.approx((75 + 50 + 100) / 3)
    assert got["micro"]["score"] == pytest.approx(500 / 7) and got["n"] == 7
    low, high = bootstrap.interval({"all": np.array([1, 0, 1, 1, 0, 1, 1.0])})
    assert (got["micro"]["low"], got["micro"]["high"]) == (low, high)
    with pytest.raises(FlanJaxError, match="subject 'x': no category"):
        grouped_scores.summarize({"x": [1]}, {})
    with pytest.raises(FlanJaxError, match="subject 'x': no questions"):
        grouped_scores.summarize({"x": []}, {"x": "STEM"})
