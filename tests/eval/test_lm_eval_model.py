"""The "flan_jax" lm-eval model: its log-likelihoods (lm-eval's own token split), rolling
log-likelihoods and greedy outputs equal a plain forward pass of the same tiny model; lm-eval's
`simple_evaluate` and `flan-jax lm-eval` run a task over a local JSONL file with acc / acc_norm
equal to those computed by hand from the reference log-likelihoods; the parity test: our
evaluator under the `lm_eval` convention (rank_classification.score_options) gives lm-eval's
log-likelihoods to 1e-5 and its acc / acc_norm; a missing checkpoint is one error line.
Nothing downloads."""
import json
import os

import numpy as np
import pytest

pytest.importorskip("lm_eval")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lm_eval.api.instance import Instance  # noqa: E402
from tiny_checkpoint import (  # noqa: E402
    ROWS, harness_split, reference_greedy, reference_log_likelihood, write_setup)

from flan_jax.cli import main  # noqa: E402
from flan_jax.errors import FlanJaxError  # noqa: E402
from flan_jax.eval import lm_eval_model  # noqa: E402
from flan_jax.models import params_io  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return write_setup(tmp_path_factory.mktemp("lm_eval"))


@pytest.fixture(scope="module")
def lm(setup):
    return lm_eval_model.FlanJaxLM(checkpoint=str(setup["ckpt"]), vocabulary=str(setup["vocab"]), batch_size=3)


def _instances(kind, args_list):
    return [Instance(kind, {}, args, i) for i, args in enumerate(args_list)]


def test_registered_under_flan_jax():
    from lm_eval.api.registry import get_model

    assert lm_eval_model.registered() and get_model("flan_jax") is lm_eval_model.FlanJaxLM
    assert get_model("hf").__name__ == "HFLM"  # lm-eval's own models still resolve


@pytest.mark.slow
def test_loglikelihood_equals_a_plain_forward(setup, lm):
    _, params = params_io.load_checkpoint(setup["ckpt"])
    pairs = [("is ice cold", " yes"), ("the cat sat ", "on the mat"), ("", "one two"), ("a dog", " ran")]
    got = lm.loglikelihood(_instances("loglikelihood", pairs))
    for (ctx, cont), (ll, greedy) in zip(pairs, got):
        ctx_ids, cont_ids = harness_split(lm.vocabulary, ctx, cont) if ctx else ([], lm.vocabulary.encode(cont))
        want, want_greedy = reference_log_likelihood(params, ctx_ids, list(cont_ids))
        assert abs(ll - want) < 1e-4 and greedy == want_greedy


@pytest.mark.slow
def test_rolling_windows_cover_every_token_once(setup):
    """max_length 4: the text is scored in lm-eval's own rolling windows (each token predicted
    once, context and predicted tokens at most 4); a long max_length scores it in one pass from BOS."""
    from lm_eval import utils as lm_utils

    small = lm_eval_model.FlanJaxLM(checkpoint=str(setup["ckpt"]), vocabulary=str(setup["vocab"]), max_length=4)
    _, params = params_io.load_checkpoint(setup["ckpt"])
    text = "the cat sat on the mat"
    ids = list(small.vocabulary.encode(text))
    want = 0.0
    for window in lm_utils.get_rolling_token_windows(ids, prefix_token=-1, max_seq_len=3, context_len=1):
        ctx, pred = lm_utils.make_disjoint_window(window)
        want += reference_log_likelihood(params, [t for t in ctx if t != -1], pred)[0]
    [got] = small.loglikelihood_rolling(_instances("loglikelihood_rolling", [(text,)]))
    assert abs(got - want) < 1e-4
    # a long window: one pass, every token given BOS and all before it
    [whole] = small.__class__(checkpoint=str(setup["ckpt"]), vocabulary=str(setup["vocab"])).loglikelihood_rolling(
        _instances("loglikelihood_rolling", [(text,)]))
    assert abs(whole - reference_log_likelihood(params, [], ids)[0]) < 1e-4


@pytest.mark.slow
def test_generate_until_is_greedy_and_stops(setup, lm):
    _, params = params_io.load_checkpoint(setup["ckpt"])
    prompt = "the cat"
    ids = reference_greedy(params, list(lm.vocabulary.encode(prompt)), steps=6)
    want = lm.vocabulary.decode(ids)
    [got] = lm.generate_until(_instances("generate_until", [(prompt, {"until": [], "max_gen_toks": 6})]))
    assert got == want
    assert lm_eval_model.cut_at_stops("yes.\nQ: no", ["\n", "Q:"]) == "yes."


def _by_hand(lm, params):
    """acc and acc_norm of ROWS from reference log-likelihoods: continuation ' ' + choice,
    acc_norm divides by the choice's length in characters (lm-eval's convention)."""
    acc, acc_norm = [], []
    for row in ROWS:
        lls = np.array([reference_log_likelihood(params, *harness_split(lm.vocabulary, row["q"], " " + c))[0]
                        for c in row["choices"]])
        lengths = np.array([len(c) for c in row["choices"]], float)
        acc.append(float(np.argmax(lls) == row["label"]))
        acc_norm.append(float(np.argmax(lls / lengths) == row["label"]))
    return np.mean(acc), np.mean(acc_norm)


@pytest.fixture(scope="module")
def harness(setup):
    """lm-eval's simple_evaluate of the local task on the tiny checkpoint, samples logged."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    args = f"checkpoint={setup['ckpt']},vocabulary={setup['vocab']}"
    return lm_eval.simple_evaluate(model="flan_jax", model_args=args, tasks=["tiny_mc"], log_samples=True,
                                   task_manager=TaskManager(include_path=str(setup["tasks"]), include_defaults=False))


@pytest.mark.slow
def test_simple_evaluate_and_the_command_line_score_a_local_task(setup, lm, harness, tmp_path):
    _, params = params_io.load_checkpoint(setup["ckpt"])
    want_acc, want_norm = _by_hand(lm, params)
    args = f"checkpoint={setup['ckpt']},vocabulary={setup['vocab']}"
    result = harness["results"]["tiny_mc"]
    assert result["acc,none"] == pytest.approx(want_acc) and result["acc_norm,none"] == pytest.approx(want_norm)
    assert main(["lm-eval", "--model_args", args, "--tasks", "tiny_mc", "--include_path", str(setup["tasks"]),
                 "--output_path", str(tmp_path / "results")]) == 0
    [written] = list((tmp_path / "results").rglob("results_*.json"))
    cli = json.loads(written.read_text())["results"]["tiny_mc"]
    assert cli["acc,none"] == pytest.approx(want_acc) and cli["acc_norm,none"] == pytest.approx(want_norm)


@pytest.mark.slow
def test_bad_model_args_are_one_line(setup, tmp_path, capsys):
    with pytest.raises(FlanJaxError, match="checkpoint=PATH is required"):
        lm_eval_model.FlanJaxLM()
    with pytest.raises(FlanJaxError, match=f"checkpoint {tmp_path / 'nowhere'}: does not exist"):
        lm_eval_model.FlanJaxLM(checkpoint=str(tmp_path / "nowhere"))
    code = main(["lm-eval", "--model_args", f"checkpoint={tmp_path / 'nowhere'}", "--tasks", "tiny_mc",
                 "--include_path", str(setup["tasks"])])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1] == f"flan-jax lm-eval: error: checkpoint {tmp_path / 'nowhere'}: does not exist"


@pytest.mark.slow
def test_parity_our_lm_eval_convention_equals_lm_eval(setup, lm, harness):
    """lm-eval driving the flan_jax model vs our evaluator on the same examples and model."""
    from flan_jax.eval.rank_classification import score_options

    _, params = params_io.load_checkpoint(setup["ckpt"])
    examples = [{"inputs_pretokenized": r["q"], "options": r["choices"]} for r in ROWS]
    ours = score_options(lm.module, params, examples, vocabulary=lm.vocabulary,
                         lengths={"inputs": 32, "targets": 16}, convention="lm_eval", batch_size=4)
    samples = sorted(harness["samples"]["tiny_mc"], key=lambda s: s["doc_id"])
    assert [s["doc"]["q"] for s in samples] == [r["q"] for r in ROWS]
    for sample, mine in zip(samples, ours.log_likelihoods):
        theirs = [resp[0][0] for resp in sample["resps"]]  # one (log-likelihood, is_greedy) per choice
        np.testing.assert_allclose(mine, theirs, atol=1e-5, rtol=0)
    for metric in ("acc", "acc_norm"):
        per_doc = [float(ours.choices[metric][i] == ROWS[i]["label"]) for i in range(len(ROWS))]
        assert [s[metric] for s in samples] == per_doc
        assert harness["results"]["tiny_mc"][f"{metric},none"] == pytest.approx(np.mean(per_doc))
