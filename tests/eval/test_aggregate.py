"""template_spread: per-template scores -> mean/min/max per dataset and cluster, by hand."""
import pytest

from flan_jax.eval.aggregate import pool_by_dataset, split_by_dataset, template_spread


def test_docstring_example_by_hand():
    got = template_spread({"rte": {1: 60.0, 2: 70.0}, "cb": {0: 50.0}}, {"rte": "nli", "cb": "nli"})
    assert got["datasets"]["rte"] == {"mean": 65.0, "min": 60.0, "max": 70.0, "num_templates": 2,
                                      "cluster": "nli", "templates": {"1": 60.0, "2": 70.0}}
    assert got["clusters"] == {"nli": {"mean": 57.5, "min": 55.0, "max": 60.0, "num_datasets": 2}}


def test_each_dataset_counts_once_in_its_cluster():
    # a dataset with 9 templates weighs as much as one with 1: (10 + 90) / 2, not (9*10 + 90) / 10
    scores = {"a": {i: 10.0 for i in range(9)}, "b": {0: 90.0}, "c": {0: 30.0, 4: 40.0}}
    got = template_spread(scores, {"a": "x", "b": "x", "c": "y"})
    assert got["clusters"]["x"]["mean"] == 50.0
    assert got["clusters"]["y"] == {"mean": 35.0, "min": 30.0, "max": 40.0, "num_datasets": 1}
    assert list(got["datasets"]["c"]["templates"]) == ["0", "4"]


def test_bad_input_raises():
    with pytest.raises(ValueError, match="dataset 'a': no template scores"):
        template_spread({"a": {}}, {"a": "x"})
    with pytest.raises(ValueError, match="dataset 'a': no cluster"):
        template_spread({"a": {0: 1.0}}, {})


def test_pool_and_split_by_dataset_follow_their_docstring_example():
    examples = {"nli": {"rte": ["a", "b"], "cb": []}, "qa": {"arc": ["c"]}}
    assert pool_by_dataset(examples) == ["a", "b", "c"]
    assert split_by_dataset([1, 0, 1], examples) == {"nli": {"rte": [1, 0], "cb": []}, "qa": {"arc": [1]}}
