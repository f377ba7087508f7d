"""evaluate() with several scoring conventions, acc_mutual_info and the two baselines: per task
against hand log-likelihoods, per cluster against hand means, and in the Markdown report."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.data.templates.spec import DatasetSpec, ProceduralSource, Template
from flan_jax.errors import FlanJaxError
from flan_jax.eval import evaluate, report

ALPHABET = "abcdefghijklmnopqrstuvwxyz ?:"


class CharVocab:
    eos_id = 1

    def encode(self, text):
        return [2 + ALPHABET.index(c) for c in text]


V = CharVocab()


class Lookup(nn.Module):
    """logits[t] = current[x_t] + previous[x_{t-1}]: log-probs a lookup away (test_conventions)."""

    FEATURE_FORMAT = "decoder"

    @nn.compact
    def __call__(self, batch):
        x = batch["decoder_input_tokens"]
        current = self.param("current", nn.initializers.normal(2.0), (32, 32))
        previous = self.param("previous", nn.initializers.normal(2.0), (32, 32))
        return current[x] + previous[jnp.pad(x, ((0, 0), (1, 0)))[:, :-1]]


def _logp_chain(params, tokens, first):
    """sum over k >= first of log p(tokens[k] | tokens[k-2], tokens[k-1]) (0 before the start)."""
    cur, prev = np.asarray(params["current"], np.float64), np.asarray(params["previous"], np.float64)
    padded = [0] + list(tokens)
    total = 0.0
    for k in range(first, len(tokens)):
        row = cur[padded[k]] + prev[padded[k - 1]]
        total += row[padded[k + 1]] - np.log(np.exp(row - row.max()).sum()) - row.max()
    return total


SPEC = DatasetSpec(name="toy", cluster="toy_cluster", sources={"toy": ProceduralSource(lambda s, n: [], {}, {})},
                   to_fields=dict, fields=("q", "answer"), templates=(Template("{q}{options_}", "{answer}"),),
                   options=("yes", "no"))
PROMPTS = ["is it ok?", "a b c:", "more?", "fine:"]
ANSWERS = ["yes", "no", "yes", "yes"]
EXAMPLES = [{"inputs": V.encode(p), "inputs_pretokenized": p, "options": ["yes", "no"], "answer": a}
            for p, a in zip(PROMPTS, ANSWERS)]


def test_task_entry_has_every_convention_and_the_baselines():
    model = Lookup()
    params = model.init(jax.random.PRNGKey(7), {"decoder_input_tokens": jnp.zeros((1, 2), jnp.int32)})["params"]
    cfg = evaluate.EvalConfig(lengths={"inputs": 16, "targets": 8}, scoring="lm_eval,flan", mutual_info=True)
    entry = evaluate.evaluate_examples(model, params, EXAMPLES, vocabulary=V, spec=SPEC, task="toy.toy:eval",
                                       config=cfg)
    hits = {k: [] for k in ("flan.acc", "flan.acc_mutual_info", "lm_eval.acc", "lm_eval.acc_norm",
                            "lm_eval.acc_mutual_info")}
    for p, gold in zip(PROMPTS, ANSWERS):
        opts = ["yes", "no"]
        ctx = V.encode(p)
        flan = np.array([_logp_chain(params, [0] + ctx + V.encode(o) + [1], len(ctx) + 1) for o in opts])
        flan_u = np.array([_logp_chain(params, [0] + V.encode(o) + [1], 1) for o in opts])
        lm = np.array([_logp_chain(params, [0] + ctx + V.encode(" " + o), len(ctx) + 1) for o in opts])
        lm_u = np.array([_logp_chain(params, [0] + V.encode(" " + o), 1) for o in opts])
        g = opts.index(gold)
        hits["flan.acc"].append(np.argmax(flan) == g)
        hits["flan.acc_mutual_info"].append(np.argmax(flan - flan_u) == g)
        hits["lm_eval.acc"].append(np.argmax(lm) == g)
        hits["lm_eval.acc_norm"].append(np.argmax(lm / np.array([3.0, 2.0])) == g)
        hits["lm_eval.acc_mutual_info"].append(np.argmax(lm - lm_u) == g)
    got = {f"{c}.{m}": v for c, ms in entry["scoring"].items() for m, v in ms.items()}
    assert got == pytest.approx({k: 100.0 * np.mean(v) for k, v in hits.items()})
    assert entry["headline"] == pytest.approx(got["lm_eval.acc"])  # the first convention named
    assert entry["baselines"] == {"majority": 75.0, "majority_answer": "yes", "chance": 50.0}


def _task(dataset, template, cluster, flan, lm, majority):
    return {"task": f"{dataset}:eval_t{template}", "source": dataset, "template": template, "cluster": cluster,
            "method": "rank_classification", "metric": "accuracy", "num_examples": 4,
            "scores": {"accuracy": flan}, "headline": flan, "truncated": 0, "chance": 50.0, "samples": [],
            "scoring": {"flan": {"acc": flan}, "lm_eval": {"acc": lm}},
            "baselines": {"majority": majority, "majority_answer": "yes", "chance": 50.0}}


def test_cluster_side_scores_are_averaged_like_the_headline(tmp_path):
    # by hand: rte t0/t1 flan 60/70 -> 65, cb 40 -> nli (65 + 40) / 2 = 52.5; lm_eval (50 + 70) / 2, 30
    # -> (60 + 30) / 2 = 45; majority rte 52.7 (both templates), cb 50.0 -> 51.35
    tasks = [_task("flan2021.rte", 0, "nli", 60.0, 50.0, 52.7), _task("flan2021.rte", 1, "nli", 70.0, 70.0, 52.7),
             _task("flan2021.cb", 0, "nli", 40.0, 30.0, 50.0)]
    r = {"evaluation": "toy", "split": "validation", "shots": 0, "tasks": tasks, **evaluate.summarize(tasks)}
    assert r["clusters"]["nli"]["score"] == pytest.approx(52.5)
    side = {k: v["nli"] for k, v in r["side_scores"].items()}
    assert side == pytest.approx({"flan.acc": 52.5, "lm_eval.acc": 45.0, "majority": 51.35})
    md = report.write_report(r, tmp_path)["markdown"].read_text()
    assert "| cluster | tasks | score | min | max | chance | majority | flan.acc | lm_eval.acc |" in md
    assert "| nli | 3 | 52.5 | 50.0 | 55.0 | 50.0 | 51.4 | 52.5 | 45.0 |" in md
    assert "| flan2021.cb:eval_t0 | 0 | rank_classification | accuracy | 40.0 | 50.0 | 4 | 0 | 50.0 | 40.0 | 30.0 |" in md


def test_unknown_convention_is_one_error():
    with pytest.raises(FlanJaxError, match="unknown scoring convention 'lmeval'"):
        evaluate.EvalConfig(scoring=("flan", "lmeval"))
