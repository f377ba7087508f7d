"""The main job end to end on a tiny random Gemma 3 GGUF (written by the test), and its summary
arithmetic against hand-computed values."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from flan_jax.experiments import heldout_report, main_job

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))


def _correct(before, after):
    return {"before": {"c": {"t": before}}, "after": {"c": {"t": after}}}


def test_report_and_summary_arithmetic():
    examples = {"c": {"t": [{"template_index": i % 2} for i in range(4)]}}
    before = heldout_report.report({"c": {"t": [1, 0, 0, 0]}}, examples)
    after = heldout_report.report({"c": {"t": [1, 1, 0, 1]}}, examples)
    assert before["clusters"]["c"]["score"] == pytest.approx(25.0)
    # template 0 holds examples 0 and 2, template 1 examples 1 and 3
    assert after["clusters"]["c"]["template_min"] == pytest.approx(50.0)
    assert after["clusters"]["c"]["template_max"] == pytest.approx(100.0)
    rows = heldout_report.summarize(before, after, None, _correct([1, 0, 0, 0], [1, 1, 0, 1]), "c", ["d"])
    assert rows["c"]["after_minus_before"]["difference"] == pytest.approx(50.0)
    assert rows["c"]["held_out"] and not rows["c"]["trained_on"]
    table = heldout_report.summary_table(rows)
    assert "**c (held out)** | 25.0 [" in table and "+50.0 [" in table


def test_eval_examples_rotate_templates_and_append_the_suffix():
    import gin
    from flan_jax.data.templates import flan_nl, variants  # noqa: F401  (the gin configurable)

    class Chars:
        def encode(self, s):
            return [3 + ord(c) % 50 for c in s]

    with gin.unlock_config():
        gin.bind_parameter("default_render_config.inputs_suffix", "\n")
    try:
        ex = main_job.eval_examples({"nl_nli": flan_nl.cluster_datasets("nl_nli")[:1]}, "test", 12, Chars())
    finally:
        with gin.unlock_config():
            gin.bind_parameter("default_render_config.inputs_suffix", "")
    rows = ex["nl_nli"]["nl_nli_people"]
    assert [r["template_index"] for r in rows] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert all(r["inputs"][-1] == 3 + ord("\n") % 50 for r in rows)
    assert all(r["answer"] in r["options"] for r in rows)


@pytest.mark.slow
def test_main_job_end_to_end_on_a_tiny_gemma(tmp_path, monkeypatch, capsys):
    from gguf_fixtures import write_gemma3

    monkeypatch.setenv("FLAN_JAX_CACHE", str(tmp_path / "cache"))
    import gin

    gguf_path = write_gemma3(tmp_path / "tiny.gguf")
    try:
        out = _run_tiny(tmp_path, gguf_path)
    finally:
        gin.clear_config()  # the job's gin bindings must not reach later tests in this process
        _no_compilation_cache()
    _check_run(out, tmp_path)
    _check_progress_and_try_command(out, capsys)
    # the XLA executables went to <FLAN_JAX_CACHE>/xla (main_job_options.compilation_cache)
    assert any((tmp_path / "cache" / "xla").iterdir())


def _no_compilation_cache():
    """jax's persistent compilation cache is process-wide: off again for the tests after this one."""
    import jax
    from jax._src import compilation_cache

    jax.config.update("jax_compilation_cache_dir", None)
    compilation_cache.reset_cache()


def _run_tiny(tmp_path, gguf_path):
    return main_job.run_main_job(str(tmp_path / "run"), None, [
        f"main_job_options.base = '{gguf_path}'",
        "main_job_options.held_out_examples_per_task = 4",
        "main_job_options.held_in_examples_per_task = 1",
        "train.num_steps = 2", "train.checkpoint_every = 2", "train.batch_size = 8",
        "train.feature_lengths = {'inputs': 48, 'targets': 16}",
        "main_job_options.eval_lengths = {'inputs': 96, 'targets': 16}",
    ])


def _check_progress_and_try_command(out, capsys):
    """stderr (not a terminal here) has one line per phase with the examples scored; the summary
    ends with a `flan-jax generate` command, which answers a prompt with the tuned model."""
    import re
    import shlex

    from flan_jax.cli import main

    captured = capsys.readouterr()
    before = json.loads((out["run_dir"] / "eval_before" / "report.json").read_text())
    total = sum(c["num_examples"] for c in before["clusters"].values())
    assert re.search(rf"^eval_before: {total}/{total} examples in \d+\.\d s", captured.err, re.M)
    assert re.search(r"^tune: \d+\.\d s$", captured.err, re.M)
    command = (out["run_dir"] / "summary.md").read_text().strip().splitlines()[-1].strip()
    assert captured.out.strip().splitlines()[-1].strip() == command
    words = shlex.split(command)
    assert words[:4] == ["flan-jax", "generate", "--checkpoint", str(out["run_dir"] / "train")]
    assert main([*words[1:], "--prompt", "Is this a test?", "--max_decode_length", "3"]) == 0
    assert capsys.readouterr().out.endswith("\n")  # one answer line (any text: random weights)


def _check_run(out, tmp_path):
    run = out["run_dir"]
    summary = json.loads((run / "summary.json").read_text())
    nli = summary["clusters"]["nl_nli"]
    assert nli["held_out"] and summary["steps"] == 2 and len(summary["control_losses"]) == 2
    assert {"before", "after", "control", "after_minus_before", "after_minus_control"} <= set(nli)
    assert not summary["clusters"]["nl_paraphrase"]["trained_on"]  # excluded with NLI (FLAN's rule)
    assert list(summary["phase_minutes"]) == ["base", "data", "eval_before", "tune", "eval_after", "control_tune",
                                              "control_eval"]
    assert sum(summary["phase_minutes"].values()) <= summary["minutes"] + 0.05 and summary["peak_rss_gib"] > 0.1
    for name in ("summary.md", "loss.png", "clusters_before_after.png", "eval_before/report.json",
                 "eval_control/report.json", "train/checkpoints", "control/checkpoints"):
        assert (run / name).exists(), name
    before = json.loads((run / "eval_before" / "report.json").read_text())
    assert before["clusters"]["nl_nli"]["num_examples"] == 12
    # the converted base is cached: a second conversion is not needed
    assert len(list((tmp_path / "cache" / "base").iterdir())) == 1


@pytest.mark.parametrize("case", ["cluster", "base", "out_is_file", "out_below_file", "real_split", "real_base",
                                  "real_mutual_info"])
def test_bad_main_job_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    """Each refused before anything is loaded or written: one line naming the value, status 2."""
    from flan_jax import cli

    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    out = {"out_is_file": a_file, "out_below_file": a_file / "run"}.get(case, tmp_path / "run")
    argv = ["main", "--experiment", "real" if case.startswith("real") else "flan_nl", "--out", str(out)]
    argv += {"cluster": ["--gin.main_job_options.held_out_cluster='nl_nope'"],
             "base": [f"--gin.main_job_options.base='{tmp_path / 'missing.gguf'}'"],
             "real_split": ["--gin.real_job_options.held_out_split='test'"],
             "real_base": [f"--gin.real_job_options.base='{tmp_path / 'missing.gguf'}'"],
             "real_mutual_info": ["--gin.real_job_options.mutual_info='some'"]}.get(case, [])
    import gin

    try:
        assert cli.main(argv) == 2
    finally:
        gin.clear_config()  # the job's gin bindings must not reach later tests in this process
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("flan-jax main: error: "), err
    want = {"cluster": "held-out cluster 'nl_nope' is not a flan-nl cluster",
            "base": f"{tmp_path / 'missing.gguf'}': no such GGUF file",
            "out_is_file": f"{a_file} is a file, not a folder",
            "out_below_file": f"{a_file} is a file, not a folder",
            "real_split": "held_out_split 'test' must be validation_dev or validation_test",
            "real_base": f"{tmp_path / 'missing.gguf'}': no such GGUF file",
            "real_mutual_info": "mutual_info 'some' must be one of"}[case]
    assert want in err[0]
    assert a_file.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_lora_tuning_is_evaluated_with_its_adapters_merged(tmp_path):
    """With `train.lora`, the evaluated parameters are W0 + (alpha / r) A B from the adapters the
    trainer saved (hand-computed here for every adapted kernel); other parameters are the base's."""
    from types import SimpleNamespace

    from flan_jax.models import lora
    from flan_jax.train import lora_training
    from flan_jax.train.lora_training import dense_params

    rng = np.random.default_rng(0)
    base = {"layer_0": {"attn": {"q": {"kernel": rng.normal(size=(4, 2, 3)).astype(np.float32)}},
                        "norm": {"scale": np.ones(4, np.float32)}}}
    adapters = {"layer_0/attn/q": {"lora_a": rng.normal(size=(4, 2)).astype(np.float32),
                                   "lora_b": rng.normal(size=(2, 2, 3)).astype(np.float32)}}
    config = lora.LoraConfig(rank=2, alpha=6.0)
    lora_training.save_adapters(tmp_path / "train" / "adapters" / "5", adapters, config, None)
    result = SimpleNamespace(step=5, state=SimpleNamespace(frozen=base, params=adapters))
    got = dense_params(result, tmp_path / "train")
    a, b = adapters["layer_0/attn/q"]["lora_a"], adapters["layer_0/attn/q"]["lora_b"]
    want = base["layer_0"]["attn"]["q"]["kernel"] + 3.0 * np.einsum("ir,rhd->ihd", a, b)
    np.testing.assert_allclose(np.asarray(got["layer_0"]["attn"]["q"]["kernel"]), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(got["layer_0"]["norm"]["scale"]), base["layer_0"]["norm"]["scale"])
    full = SimpleNamespace(step=5, state=SimpleNamespace(frozen=None, params=base))
    assert dense_params(full, tmp_path / "none") is base


def test_score_pools_every_dataset_into_one_call_with_per_dataset_results():
    """main_job.score ranks all datasets' examples in one rank_classify call; each dataset's
    correctness list equals that dataset ranked alone (the per-dataset reference), in order."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from flan_jax.eval.rank_classification import rank_classify
    from flan_jax.models.gemma import Gemma3, Gemma3Config

    class Chars:
        def encode(self, text):
            return [3 + ord(c) - 97 for c in text]

    model = Gemma3(Gemma3Config(vocab_size=40, emb_dim=16, num_heads=2, num_kv_heads=1, head_dim=8, mlp_dim=24,
                                num_layers=2, query_pre_attn_scalar=8.0, bos_token_id=2))
    params = nn.meta.unbox(model.init(jax.random.PRNGKey(0), {"decoder_input_tokens": jnp.ones((1, 8), jnp.int32)})["params"])
    rng = np.random.default_rng(0)

    def rows(options, n):
        return [{"inputs": rng.integers(3, 28, size=int(rng.integers(3, 20))).astype(np.int32),
                 "options": options, "answer": options[int(rng.integers(len(options)))]} for _ in range(n)]

    examples = {"c1": {"yes_no": rows(["yes", "no"], 7), "abc": rows(["a", "bb", "ccc"], 5)},
                "c2": {"words": rows(["cat", "dog", "bird", "fish"], 6)}}
    kw = {"vocabulary": Chars(), "lengths": {"inputs": 32, "targets": 8}, "batch_size": 4}
    got = main_job.score(model, params, examples, **kw)
    assert {c: list(d) for c, d in got.items()} == {"c1": ["yes_no", "abc"], "c2": ["words"]}
    for cluster, by_source in examples.items():
        for source, rs in by_source.items():
            alone = rank_classify(model, params, rs, **kw)
            want = [int(p == r["answer"]) for p, r in zip(alone.predicted_options, rs)]
            assert got[cluster][source] == want
    assert 0 < sum(sum(v) for d in got.values() for v in d.values()) < 18  # not all one answer
