"""Report files: JSON round trip, Markdown tables with the hand-written numbers, a readable PNG."""
import json

import pytest

from flan_jax.eval import evaluate, report


def _task(task, cluster, headline, method="rank_classification", chance=50.0, metric="accuracy"):
    return {"task": task, "cluster": cluster, "method": method, "metric": metric,
            "num_examples": 10, "scores": {metric: headline}, "headline": headline,
            "truncated": 0, "chance": chance, "samples": []}


def _report():
    tasks = [
        _task("flan_mini.mini_parity:eval", "mini_classification", 80.0),
        _task("flan_mini.mini_vowel_start:eval", "mini_classification", 60.0),
        _task("flan_mini.mini_add:eval", "mini_arithmetic", 10.0, "generation", None, "exact_match"),
    ]
    out = {"evaluation": "hand_made", "split": "validation", "shots": 0, "tasks": tasks}
    out.update(evaluate.summarize(tasks))
    return out


def test_summary_is_mean_of_tasks_then_of_clusters():
    r = _report()
    # one template per dataset: min = max = score
    assert r["clusters"] == {
        "mini_arithmetic": {"score": 10.0, "num_tasks": 1, "num_datasets": 1,
                            "template_min": 10.0, "template_max": 10.0},
        "mini_classification": {"score": 70.0, "num_tasks": 2, "num_datasets": 2,
                                "template_min": 70.0, "template_max": 70.0}}
    assert r["overall"] == pytest.approx(40.0)  # (70 + 10) / 2, not (80 + 60 + 10) / 3
    assert report.cluster_chance(r, "mini_classification") == 50.0
    assert report.cluster_chance(r, "mini_arithmetic") is None  # generation: no chance level


def test_files_are_written_and_parse(tmp_path):
    import matplotlib.image

    r = _report()
    paths = report.write_report(r, tmp_path / "out")
    assert json.loads(paths["json"].read_text()) == r
    md = paths["markdown"].read_text()
    assert "**Overall (mean over clusters): 40.0**" in md
    assert "| mini_classification | 2 | 70.0 | 70.0 | 70.0 | 50.0 |" in md
    assert "| mini_arithmetic | 1 | 10.0 | 10.0 | 10.0 | - |" in md
    assert "| flan_mini.mini_add:eval | - | generation | exact_match | 10.0 | - | 10 | 0 |" in md
    assert md.index("## mini_arithmetic") < md.index("flan_mini.mini_add:eval")
    image = matplotlib.image.imread(paths["plot"])
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_scalars_for_tensorboard():
    got = evaluate.scalars(_report())
    assert got == {"overall": 40.0, "cluster/mini_arithmetic": 10.0, "cluster/mini_classification": 70.0,
                   "cluster/mini_arithmetic/template_min": 10.0,
                   "cluster/mini_arithmetic/template_max": 10.0,
                   "cluster/mini_classification/template_min": 70.0,
                   "cluster/mini_classification/template_max": 70.0,
                   "task/flan_mini.mini_parity:eval/accuracy": 80.0,
                   "task/flan_mini.mini_vowel_start:eval/accuracy": 60.0,
                   "task/flan_mini.mini_add:eval/exact_match": 10.0}


def _template_task(dataset, template, cluster, headline):
    return dict(_task(f"{dataset}:eval_t{template}", cluster, headline),
                source=dataset, template=template)


def test_per_template_report_has_mean_min_max_per_dataset_and_cluster(tmp_path):
    # by hand: rte templates 60/70/80 -> 70 [60, 80]; cb 40/50 -> 45 [40, 50];
    # nli = mean of datasets: 57.5, min (60 + 40) / 2 = 50, max (80 + 50) / 2 = 65
    tasks = [_template_task("flan2021.rte", 0, "nli", 60.0), _template_task("flan2021.rte", 3, "nli", 70.0),
             _template_task("flan2021.rte", 5, "nli", 80.0), _template_task("flan2021.cb", 1, "nli", 40.0),
             _template_task("flan2021.cb", 2, "nli", 50.0)]
    r = {"evaluation": "per_template", "split": "validation", "shots": 0, "tasks": tasks}
    r.update(evaluate.summarize(tasks))
    assert r["clusters"]["nli"] == {"score": 57.5, "num_tasks": 5, "num_datasets": 2,
                                    "template_min": 50.0, "template_max": 65.0}
    assert r["templates"]["datasets"]["flan2021.rte"]["templates"] == {"0": 60.0, "3": 70.0, "5": 80.0}
    paths = report.write_report(r, tmp_path)
    assert json.loads(paths["json"].read_text()) == r
    md = paths["markdown"].read_text()
    assert "| nli | 5 | 57.5 | 50.0 | 65.0 | 50.0 |" in md
    assert "| flan2021.rte | nli | 3 | 70.0 | 60.0 | 80.0 |" in md
    assert "| flan2021.cb:eval_t2 | 2 | rank_classification |" in md
    with pytest.raises(evaluate.FlanJaxError, match="template 3 is scored twice"):
        evaluate.summarize(tasks + [_template_task("flan2021.rte", 3, "nli", 10.0)])
