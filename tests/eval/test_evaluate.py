"""evaluate(): held-out cluster end to end, generation tasks, the eval hook, the CLI, bad input,
and a real learning signal (a tiny model trained on one flan-mini cluster beats chance)."""
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from flan_jax import cli
from flan_jax.errors import FlanJaxError
from flan_jax.commands import eval as eval_cmd
from flan_jax.data.tasks import metrics
from flan_jax.eval import eval_tasks, evaluate
from flan_jax.eval.rank_classification import NoOptionsError
from flan_jax.models import params_io
from flan_jax.models.decoder import Decoder, DecoderConfig

TINY = DecoderConfig(vocab_size=1024, emb_dim=32, num_heads=2, num_kv_heads=1, head_dim=16,
                     mlp_dim=64, num_layers=1)
LENGTHS = {"inputs": 56, "targets": 8}
CLASSIFICATION_EVAL = "flan_mini_heldout_mini_classification_eval"


def _init(model, seed=0):
    batch = {"decoder_input_tokens": jnp.ones((1, 8), jnp.int32)}
    return nn.meta.unbox(model.init(jax.random.PRNGKey(seed), batch)["params"])


@pytest.fixture(scope="module")
def tiny():
    model = Decoder(TINY)
    return model, _init(model)


@pytest.mark.slow
def test_held_out_cluster_report_matches_its_predictions(tiny):
    model, params = tiny
    cfg = evaluate.EvalConfig(max_examples=6, lengths=LENGTHS, batch_size=8, templates="first")
    report = evaluate.evaluate(model, params, CLASSIFICATION_EVAL, config=cfg)
    tasks = {t["task"]: t for t in report["tasks"]}
    assert sorted(tasks) == ["flan_mini.mini_fruit_or_animal:eval", "flan_mini.mini_parity:eval",
                             "flan_mini.mini_vowel_start:eval"]
    for t in tasks.values():
        assert t["method"] == "rank_classification" and t["num_examples"] == 6
        assert t["chance"] == 50.0
    # the cluster score is the mean of its tasks, overall the mean of clusters (one here)
    mean = np.mean([t["headline"] for t in tasks.values()])
    headlines = [t["headline"] for t in tasks.values()]
    assert report["clusters"] == {"mini_classification": {
        "score": pytest.approx(mean), "num_tasks": 3, "num_datasets": 3,  # one template each
        "template_min": pytest.approx(mean), "template_max": pytest.approx(mean)}}
    assert sorted(d["mean"] for d in report["templates"]["datasets"].values()) == sorted(headlines)
    assert report["overall"] == pytest.approx(mean)
    # the scores are the accuracy of the sampled predictions (samples = first 3 examples)
    for t in tasks.values():
        hits = [s["prediction"] == s["target"] for s in t["samples"]]
        assert len(hits) == 3 and all(s["target"] in ("even", "odd", "fruit", "animal", "yes", "no")
                                      for s in t["samples"])


@pytest.mark.slow
def test_every_non_inverted_template_is_scored_and_aggregated(tiny):
    from flan_jax.data.templates import flan2021, render

    model, params = tiny
    cfg = evaluate.EvalConfig(max_examples=3, lengths={"inputs": 96, "targets": 8}, batch_size=8)
    with _mock_tfds(3):
        report = evaluate.evaluate(model, params, ["flan2021.dpr:eval"], config=cfg)
    dpr = next(s for s in flan2021.cluster_datasets("coreference") if s.name == "dpr")
    non_inverted = [i for i, t in enumerate(dpr.templates) if not t.inverted]
    assert len(non_inverted) == 9
    assert [t["task"] for t in report["tasks"]] == sorted(f"flan2021.dpr:eval_t{i}" for i in non_inverted)
    for t in report["tasks"]:
        assert t["template"] == int(t["task"].rpartition("eval_t")[2])
        assert render.OPTIONS_HEADER.strip() in t["samples"][0]["inputs"]
    scores = [t["headline"] for t in report["tasks"]]
    spread = report["templates"]["datasets"]["flan2021.dpr"]
    assert (spread["mean"], spread["min"], spread["max"]) == (
        pytest.approx(sum(scores) / 9), min(scores), max(scores))
    c = report["clusters"]["coreference"]
    assert (c["score"], c["template_min"], c["template_max"], c["num_tasks"], c["num_datasets"]) == (
        pytest.approx(sum(scores) / 9), min(scores), max(scores), 9, 1)


def _mock_tfds(n):
    import tensorflow_datasets as tfds

    return tfds.testing.mock_data(num_examples=n, policy=tfds.testing.MockPolicy.USE_CODE)


def test_few_shot_eval_never_uses_an_inverted_template():
    # rte's template 9 is inverted; with shots the eval tasks keep their fixed template (FLAN's
    # few-shot eval reuses the zero-shot template), never a hash-chosen one.
    infos = eval_tasks.resolve_tasks(["flan2021.rte:eval"], shots=1, templates="all")
    rte = infos[0].spec
    assert [i.name for i in infos] == [f"flan2021.rte:eval_t{i}" for i, t in enumerate(rte.templates)
                                       if not t.inverted]
    assert eval_tasks.resolve_tasks(["flan2021.rte:zs_opt"], shots=1, templates="first")[0].name == \
        "flan2021.rte:eval"
    with pytest.raises(FlanJaxError, match="templates 'some' is not one of"):
        evaluate.EvalConfig(templates="some")


@pytest.mark.slow
def test_generation_task_and_eval_hook(tiny, tmp_path):
    model, params = tiny
    cfg = evaluate.EvalConfig(max_examples=3, lengths=LENGTHS, batch_size=4, templates="first")
    hook = evaluate.make_eval_hook(TINY, ["flan_mini.mini_add:eval"], config=cfg, every_steps=10,
                                   out_dir=str(tmp_path))  # a config: the hook builds the module
    assert hook(params, 5) == {}
    got = hook(params, 10)
    assert set(got) == {"overall", "cluster/mini_arithmetic", "task/flan_mini.mini_add:eval/exact_match",
                        "cluster/mini_arithmetic/template_min", "cluster/mini_arithmetic/template_max"}
    report = json.loads((tmp_path / "step_10" / "report.json").read_text())
    (task,) = report["tasks"]
    assert task["method"] == "generation" and task["metric"] == "exact_match"
    samples = task["samples"]
    want = metrics.exact_match([s["target"] for s in samples], [s["prediction"] for s in samples])
    assert task["scores"] == pytest.approx(want)
    assert all(s["target"].isdigit() for s in samples)


def test_rank_mode_on_a_task_without_options_is_an_error(tiny):
    model, params = tiny
    cfg = evaluate.EvalConfig(max_examples=2, lengths=LENGTHS, batch_size=2, mode="rank")
    with pytest.raises(NoOptionsError, match="task 'flan_mini.mini_add:eval_t0', example 0: no answer options"):
        evaluate.evaluate(model, params, ["flan_mini.mini_add:eval"], config=cfg)


def test_empty_split_and_unknown_split_are_errors(tiny):
    model, params = tiny
    spec = eval_tasks.resolve_tasks(["flan_mini.mini_parity:eval"])[0].spec
    with pytest.raises(FlanJaxError, match="task 'flan_mini.mini_parity:eval': no examples"):
        evaluate.evaluate_examples(model, params, [], vocabulary=None, spec=spec,
                                   task="flan_mini.mini_parity:eval", config=evaluate.EvalConfig())
    with pytest.raises(FlanJaxError, match="has no split 'dev'"):
        eval_tasks.task_examples("flan_mini.mini_parity:eval", "dev", 2)


def test_checkpoint_shapes_must_match_the_model_config(tmp_path):
    model = Decoder(TINY)
    params_io.save_checkpoint(tmp_path / "ckpt", TINY, _init(model))
    wider = DecoderConfig(**{**TINY.__dict__, "mlp_dim": 96})
    with pytest.raises(FlanJaxError, match="mlp/down/kernel has shape \\(64, 32\\), the model config needs \\(96, 32\\)"):
        eval_cmd.load_model_and_params(str(tmp_path / "ckpt"), wider)
    deeper = DecoderConfig(**{**TINY.__dict__, "num_layers": 2})
    with pytest.raises(FlanJaxError, match="missing \\['layers_1/"):
        eval_cmd.load_model_and_params(str(tmp_path / "ckpt"), deeper)
    with pytest.raises(FlanJaxError, match="does not exist"):
        eval_cmd.load_model_and_params(str(tmp_path / "nope"))


@pytest.mark.slow
def test_cli_writes_report_files(tmp_path, capsys):
    model = Decoder(TINY)
    params_io.save_checkpoint(tmp_path / "ckpt", TINY, _init(model))
    out = tmp_path / "out"
    status = cli.main(["eval", "--checkpoint", str(tmp_path / "ckpt"), "--mixture",
                       "flan_mini.mini_parity:eval", "--max_examples", "4", "--input_length", "56",
                       "--target_length", "8", "--batch_size", "8", "--shots", "2",
                       "--templates", "first", "--out", str(out)])
    assert status == 0
    report = json.loads((out / "report.json").read_text())
    assert report["shots"] == 2 and report["tasks"][0]["task"] == "flan_mini.mini_parity:eval"
    assert report["tasks"][0]["mean_shots"] == 2.0  # every example got its 2 exemplars
    assert report["tasks"][0]["samples"][0]["inputs"].count("OPTIONS:") == 3  # 2 exemplars + example
    assert "| flan_mini.mini_parity:eval | 0 | rank_classification |" in (out / "report.md").read_text()
    assert (out / "clusters.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "mini_classification" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_mock_evaluates_a_flan2021_cluster_offline(tmp_path, capsys):
    model = Decoder(TINY)
    params_io.save_checkpoint(tmp_path / "ckpt", TINY, _init(model))
    out = tmp_path / "out"
    status = cli.main(["eval", "--checkpoint", str(tmp_path / "ckpt"), "--mixture",
                       "flan2021_heldout_coreference_eval", "--mock", "--mock_examples", "2",
                       "--max_examples", "2", "--input_length", "96", "--target_length", "8",
                       "--batch_size", "8", "--out", str(out)])
    assert status == 0
    report = json.loads((out / "report.json").read_text())
    # wsc273's plain-int labels are random in mock rows, so its mapping drops them all: the
    # mock run skips it (and says so) instead of failing. Every non-inverted template is scored:
    # dpr 9 (one inverted), winogrande 10.
    names = [t["task"] for t in report["tasks"]]
    assert names == sorted([f"flan2021.dpr:eval_t{i}" for i in range(9)]
                           + [f"flan2021.winogrande:eval_t{i}" for i in range(10)])
    assert [s["task"] for s in report["skipped"]][:1] == ["flan2021.wsc273:eval_t0"]
    assert report["clusters"]["coreference"]["num_tasks"] == 19
    assert report["clusters"]["coreference"]["num_datasets"] == 2
    assert "## Datasets over templates" in (out / "report.md").read_text()
    assert "(over templates)" in capsys.readouterr().out
    assert all(t["method"] == "rank_classification" and t["num_examples"] >= 1 for t in report["tasks"])


def test_cli_bad_checkpoint_is_one_line_error(tmp_path, capsys):
    status = cli.main(["eval", "--checkpoint", str(tmp_path / "missing"), "--mixture", "flan_mini_eval"])
    assert status == 2
    assert "does not exist" in capsys.readouterr().err


# ----------------------------------------------------------------------------- learning signal


def _train_examples(cluster, per_task):
    import seqio

    from flan_jax.data.templates import flan_mini
    from flan_jax.data.tasks import catalogue

    examples = []
    for spec in flan_mini.cluster_datasets(cluster):
        name = catalogue.ensure_task(f"flan_mini.{spec.name}:zs_opt").name
        ds = seqio.get_mixture_or_task(name).get_dataset(None, split="train", shuffle=False, use_cached=False)
        examples += [{"inputs": e["inputs"], "targets": e["targets"]}
                     for e in ds.take(per_task).as_numpy_iterator()]
    np.random.default_rng(0).shuffle(examples)
    return examples


@pytest.fixture
def fresh_flan_mini_tasks():
    """No gin bindings left by another test file in the same pytest worker: the render options
    would change what is learned here (ensure_task registers the tasks again for the options)."""
    import gin

    gin.clear_config()
    yield


@pytest.mark.slow
def test_training_on_a_cluster_beats_chance_on_its_validation_split(fresh_flan_mini_tasks):
    """A minimal optax loop (independent of the trainer) on mini_classification's zs_opt train
    tasks; rank classification on the validation split (eval template) before and after."""
    from flan_jax.data.features import pipeline

    model = Decoder(LEARNER)
    params = _init(model, seed=0)
    batches = list(pipeline.batches(_train_examples("mini_classification", 250) * 5, "decoder",
                                    {"inputs": 96, "targets": 32}, 16, pack=True))
    tx = optax.adam(5e-3)
    opt = tx.init(params)

    def loss_fn(p, b):
        logp = jax.nn.log_softmax(model.apply({"params": p}, b))
        tok = jnp.take_along_axis(logp, b["decoder_target_tokens"][..., None], -1)[..., 0]
        w = b["decoder_loss_weights"].astype(jnp.float32)
        return -(tok * w).sum() / w.sum()

    @jax.jit
    def step(p, o, b):
        grads = jax.grad(loss_fn)(p, b)
        updates, o = tx.update(grads, o, p)
        return optax.apply_updates(p, updates), o

    # the first non-inverted template (the one this test was calibrated on); with every template
    # the same run measured 56.9 after training: the other phrasings are learned more slowly
    cfg = evaluate.EvalConfig(max_examples=64, lengths=LENGTHS, batch_size=64, templates="first")
    before = evaluate.evaluate(model, params, CLASSIFICATION_EVAL, config=cfg)
    for i in range(STEPS):
        params, opt = step(params, opt, batches[i % len(batches)])
    after = evaluate.evaluate(model, params, CLASSIFICATION_EVAL, config=cfg)
    # 3 two-option tasks x 64 examples: chance 50%, binomial sd of the mean about 3.6 points.
    # Measured: 52 before, 82 after.
    assert before["overall"] < 60.0
    assert after["overall"] > 65.0


STEPS = 100
LEARNER = DecoderConfig(vocab_size=1024, emb_dim=64, num_heads=4, num_kv_heads=2, head_dim=16,
                        mlp_dim=128, num_layers=2)


@pytest.fixture
def clean_gin():
    import gin

    yield
    gin.clear_config()


def test_trainer_checkpoint_with_model_from_gin(tmp_path, clean_gin):
    import orbax.checkpoint as ocp

    model = Decoder(TINY)
    params = _init(model, seed=4)
    manager = ocp.CheckpointManager(tmp_path / "run" / "checkpoints")
    manager.save(7, args=ocp.args.Composite(
        state=ocp.args.StandardSave({"step": jnp.int32(7), "params": params, "opt_state": {}}),
        data=ocp.args.JsonSave({"batches_consumed": 7})))
    manager.wait_until_finished()
    gin_file = tmp_path / "model.gin"
    bindings = "\n".join(f"DecoderConfig.{k} = {v!r}" for k, v in TINY.__dict__.items())
    gin_file.write_text("import flan_jax.models.decoder\n" + bindings + "\n"
                        'train.model = @DecoderConfig()\ntrain.feature_lengths = {"inputs": 40, "targets": 6}\n')
    config, lengths = eval_cmd._gin_model_and_lengths([str(gin_file)], [])
    assert config == TINY and lengths == {"inputs": 40, "targets": 6}
    _, loaded, _ = eval_cmd.load_model_and_params(str(tmp_path / "run"), config)
    np.testing.assert_array_equal(loaded["layers_0"]["mlp"]["up"]["kernel"],
                                  params["layers_0"]["mlp"]["up"]["kernel"])
    with pytest.raises(FlanJaxError, match="needs the model from --gin_file"):
        eval_cmd.load_model_and_params(str(tmp_path / "run"))
    with pytest.raises(FlanJaxError, match="no flan_jax checkpoint here"):
        eval_cmd.load_model_and_params(str(tmp_path), config)


@pytest.mark.slow
def test_cot_task_scores_the_answer_after_the_marker(tiny, monkeypatch):
    from importlib import resources

    monkeypatch.setenv("FLAN_JAX_DATA_DIR", str(resources.files("flan_jax") / "assets" / "samples"))
    model, params = tiny
    cfg = evaluate.EvalConfig(max_examples=2, lengths=LENGTHS, batch_size=4, templates="first")
    report = evaluate.evaluate(model, params, ["cot.creak:eval"], config=cfg)
    (task,) = report["tasks"]
    assert task["method"] == "generation" and task["cluster"] == "cot"
    # the rendered CoT target "<rationale> So the answer is no." is scored as just "no"
    raw = eval_tasks.task_examples("cot.creak:eval", "validation", 2)[0]
    assert [e["targets_pretokenized"].decode().endswith("So the answer is no.") for e in raw] == [True]
    assert [s["target"] for s in task["samples"]] == ["no"]  # the one validation row
    want = metrics.METRICS[task["metric"]]([s["target"] for s in task["samples"]],
                                           [s["prediction"] for s in task["samples"]])
    assert task["scores"] == pytest.approx(want)
