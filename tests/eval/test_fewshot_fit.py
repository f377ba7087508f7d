"""Few-shot prompts fit the inputs length the run actually uses (issue 25, item 2): exemplars are
dropped last first, the example's own question is never cut, and a report never scores a prompt
that lost its question. The reference for "its own question" is the zero-shot prompt of the same
row, rendered by the same task with 0 shots."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.data.templates import fewshot
from flan_jax.errors import FlanJaxError
from flan_jax.eval import eval_tasks, evaluate
from flan_jax.models.decoder import Decoder, DecoderConfig

TASK = "flan_mini.mini_vowel_start:eval"


def _texts(examples, key="inputs_pretokenized"):
    return [e[key].decode("utf-8") for e in examples]


@pytest.mark.slow
def test_eval_few_shot_prompts_fit_128_tokens_and_keep_their_question():
    (zero,) = eval_tasks.resolve_tasks(TASK, shots=0)
    zero_examples, _ = eval_tasks.task_examples(zero.name, "validation", 20)
    questions = _texts(zero_examples)
    (info,) = eval_tasks.resolve_tasks(TASK, shots=5, inputs_length=128)
    examples, vocab = eval_tasks.task_examples(info.name, "validation", 20)
    assert len(examples) == 20
    shots = [int(e["num_shots"]) for e in examples]
    for ex, question, k in zip(examples, questions, shots):
        assert len(ex["inputs"]) <= 128
        assert len(vocab.encode(ex["inputs_pretokenized"].decode("utf-8"))) <= 128
        text = ex["inputs_pretokenized"].decode("utf-8")
        # the question and its OPTIONS block, whole, then the few-shot delimiter ("\n")
        assert text.rstrip("\n").endswith(question)
        assert 0 <= k <= 5
    assert sum(shots) > 0  # exemplars were kept where they fit, not all dropped
    # without the length, FLAN's 1920-token budget keeps all 5 and the prompts are longer
    (full,) = eval_tasks.resolve_tasks(TASK, shots=5)
    full_examples, _ = eval_tasks.task_examples(full.name, "validation", 20)
    assert all(int(e["num_shots"]) == 5 for e in full_examples)
    assert max(len(e["inputs"]) for e in full_examples) > 128


def test_prune_drops_the_last_exemplars_until_the_joint_text_fits():
    blocks = ["aaaa", "bb", "c"]
    assert fewshot.prune(blocks, "dd", 8, len) == ["aaaa", "bb"]
    assert fewshot.prune(blocks, "dd", 8, len, suffix="\n") == ["aaaa"]  # the suffix counts
    # a count that is not additive (joint text shorter or longer than its parts): the joint
    # prompt is what must fit
    def count(text):
        return len(text) + text.count("b")  # every "b" costs 2
    assert fewshot.prune(["ab", "c"], "d", 4, count) == ["ab"]  # 3 + 1 = 4 fits
    assert fewshot.prune(["ab", "c"], "d", 3, count) == []


TINY = DecoderConfig(vocab_size=1024, emb_dim=32, num_heads=2, num_kv_heads=1, head_dim=16,
                     mlp_dim=64, num_layers=1)


@pytest.mark.slow
def test_report_does_not_score_prompts_longer_than_the_inputs_length():
    from flan_jax.data.tasks import catalogue, registry

    model = Decoder(TINY)
    params = nn.meta.unbox(model.init(jax.random.PRNGKey(0),
                                      {"decoder_input_tokens": jnp.ones((1, 8), jnp.int32)})["params"])
    catalogue.ensure_task(TASK)
    examples, vocab = eval_tasks.task_examples(TASK, "validation", 6)
    spec, _ = eval_tasks._spec_of(TASK)
    lengths = sorted(len(e["inputs"]) for e in examples)
    limit = lengths[2]  # the 3 shortest fit, every longer prompt would lose its end
    cfg = evaluate.EvalConfig(lengths={"inputs": limit, "targets": 8}, batch_size=8)
    entry = evaluate.evaluate_examples(model, params, examples, vocabulary=vocab, spec=spec,
                                       task=TASK, config=cfg)
    too_long = sum(len(e["inputs"]) > limit for e in examples)
    assert too_long > 0
    assert entry["too_long"] == too_long and entry["num_examples"] == len(examples) - too_long
    cfg = evaluate.EvalConfig(lengths={"inputs": lengths[0] - 1, "targets": 8}, batch_size=8)
    with pytest.raises(FlanJaxError, match=rf"task '{TASK}': all 6 prompts are longer than the inputs length"):
        evaluate.evaluate_examples(model, params, examples, vocabulary=vocab, spec=spec, task=TASK, config=cfg)


@pytest.mark.slow
def test_training_few_shot_variant_fits_the_feature_length():
    from flan_jax.data.tasks import catalogue
    from flan_jax.train import train_data

    task = "flan_mini.mini_vowel_start:fs_opt"
    catalogue.ensure_task(task)  # FLAN's 1920-token budget only: 5 exemplars, longer than 96
    wide, _ = eval_tasks.task_examples(task, "train", 20)
    assert max(len(e["inputs"]) for e in wide) > 96
    train_data.register(task, "decoder", 96)  # what train() does with feature_lengths inputs 96
    fitted, _ = eval_tasks.task_examples(task, "train", 20)
    assert fitted and all(len(e["inputs"]) <= 96 for e in fitted)
    assert all(1 <= int(e["num_shots"]) < 5 for e in fitted)  # exemplars dropped, never all
