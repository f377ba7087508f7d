"""bootstrap: against scipy.stats.bootstrap (an independent implementation) and closed forms."""
import numpy as np
import pytest
from scipy import stats

from flan_jax.eval import bootstrap


def _scipy_interval(values, paired_with=None):
    if paired_with is None:
        data, stat = (values,), lambda x, axis: 100 * np.mean(x, axis=axis)
        res = stats.bootstrap(data, stat, n_resamples=20000, method="percentile",
                              rng=np.random.default_rng(1))
    else:
        data = (paired_with, values)
        res = stats.bootstrap(data, lambda b, a, axis: 100 * (np.mean(a, axis=axis) - np.mean(b, axis=axis)),
                              paired=True, n_resamples=20000, method="percentile",
                              rng=np.random.default_rng(1))
    return res.confidence_interval.low, res.confidence_interval.high


def test_one_task_interval_matches_scipy():
    rng = np.random.default_rng(3)
    values = (rng.random(300) < 0.62).astype(float)
    lo, hi = bootstrap.interval({"t": values}, num_resamples=20000)
    slo, shi = _scipy_interval(values)
    assert abs(lo - slo) < 0.6 and abs(hi - shi) < 0.6
    # and the normal approximation: half-width 1.96 * sqrt(p(1-p)/n)
    p = values.mean()
    assert abs((hi - lo) / 2 - 196 * np.sqrt(p * (1 - p) / values.size)) < 0.5


def test_paired_difference_matches_scipy_paired():
    rng = np.random.default_rng(4)
    before = (rng.random(400) < 0.5).astype(float)
    flip = rng.random(400) < 0.2
    after = np.where(flip, 1.0, before)
    out = bootstrap.paired_difference({"t": before}, {"t": after}, num_resamples=20000)
    assert out["difference"] == pytest.approx(100 * (after.mean() - before.mean()))
    slo, shi = _scipy_interval(after, paired_with=before)
    assert abs(out["low"] - slo) < 0.5 and abs(out["high"] - shi) < 0.5
    # pairing matters: the unpaired interval of the same difference is wider
    b_lo, b_hi = bootstrap.interval({"t": before}, num_resamples=20000)
    assert out["high"] - out["low"] < (b_hi - b_lo)


def test_constant_change_collapses_the_interval():
    before = {"a": [0, 1, 0, 1], "b": [0, 0, 0]}
    after = {"a": [1, 1, 1, 1], "b": [1, 1, 1]}  # a: +50, b: +100 on every resample
    out = bootstrap.paired_difference(before, after, num_resamples=500)
    assert out["difference"] == pytest.approx(100 * (1.0 - (0.5 + 0.0) / 2))
    # task b changes by exactly 100 points on every resample; a by 100 - its resampled accuracy
    assert out["low"] >= 50.0 - 1e-9 and out["high"] <= 100.0 + 1e-9


def test_cluster_score_is_the_mean_over_tasks():
    # hand-computed: task means 0.75 and 0.0 -> 37.5
    assert bootstrap.cluster_score({"a": [1, 1, 1, 0], "b": [0, 0]}) == pytest.approx(37.5)


def test_stratified_interval_of_two_tasks_matches_the_normal_approximation():
    rng = np.random.default_rng(5)
    a = (rng.random(250) < 0.8).astype(float)
    b = (rng.random(150) < 0.4).astype(float)
    lo, hi = bootstrap.interval({"a": a, "b": b}, num_resamples=20000)
    var = (a.var() / a.size + b.var() / b.size) / 4  # variance of the mean of two task means
    assert abs((hi - lo) / 2 - 196 * np.sqrt(var)) < 0.5


@pytest.mark.parametrize("before, after, match", [
    ({"a": [1, 0]}, {"b": [1, 0]}, "tasks differ"),
    ({"a": [1, 0]}, {"a": [1, 0, 1]}, "2 examples before and 3 after"),
    ({}, {}, "no tasks"),
    ({"a": []}, {"a": []}, "non-empty"),
])
def test_mismatched_runs_are_refused(before, after, match):
    with pytest.raises(ValueError, match=match):
        bootstrap.paired_difference(before, after)
