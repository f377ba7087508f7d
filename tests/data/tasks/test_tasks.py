"""seqio registration over tiny hand-made specs: rendering, metadata, few-shot, idempotency."""
import hashlib
import json

import numpy as np
import pytest
import seqio
import tensorflow as tf

from flan_jax.data.templates import fewshot
from flan_jax.data.tasks import registry as tasks
from flan_jax.data.tasks import catalogue
from flan_jax.data.templates.render import TemplateError, render
from flan_jax.data.sources.datasources import LocalFileError
from flan_jax.data.templates.spec import DatasetSpec, ProceduralSource, Template

VOCAB = seqio.ByteVocabulary()  # id = byte + 3; EOS = 1


def _rows(seed, n):
    return [{"q": f"Is {seed + i} odd?", "choices": ["yes", "no"],
             "answer": "yes" if (seed + i) % 2 else "no"} for i in range(n)]


def _fields(row):
    return None if row["q"] == "Is 12 odd?" else dict(row)


SPEC = DatasetSpec(
    name="tiny_choice",
    cluster="toy",
    sources={"tiny_choice": ProceduralSource(_rows, {"train": 6, "validation": 3},
                                             {"train": 10, "validation": 100})},
    to_fields=_fields,
    fields=("q", "choices", "answer"),
    templates=(
        Template("Write a question whose answer is {answer}.", "{q}", inverted=True),
        Template("Question: {q}{options_}", "{answer}"),
        Template("{q} Answer it.{options_}", "{answer}"),
    ),
    options_field="choices",
)


def _read(name, split="train", **kwargs):
    task = seqio.get_mixture_or_task(name)
    ds = task.get_dataset(None, split=split, shuffle=False, try_in_mem_cache=False,
                          use_cached=False, **kwargs)
    return list(ds.as_numpy_iterator())


def _text(x):
    return x.decode("utf-8")


@pytest.fixture(scope="module")
def names():
    return tasks.register_dataset_tasks(SPEC, VOCAB, collection="test")


def test_names_and_variants(names):
    expected = ["zs_opt", "zs_noopt", "zs_opt_var", "fs_opt", "fs_noopt", "fs_opt_t0",
                "fs_opt_t1", "fs_opt_t2", "fs_noopt_t0", "fs_noopt_t1", "fs_noopt_t2",
                "fs_opt_x", "fs_noopt_x", "eval", "eval_t1", "eval_t2"]  # template 0 is inverted
    assert names == [f"test.tiny_choice:{v}" for v in expected]
    no_options = DatasetSpec(name="n", cluster="c", sources=SPEC.sources, to_fields=dict,
                             fields=("q", "answer"), templates=(Template("{q}", "{answer}"),))
    assert tasks.variants_for(no_options) == ("zs_noopt", "fs_noopt", "fs_noopt_t0",
                                              "fs_noopt_x", "eval", "eval_t0")


def test_eval_variant_of_an_inverted_template_does_not_exist():
    with pytest.raises(tasks.UnknownNameError, match=r"unknown variant 'eval_t0'; did you mean .*eval_t1"):
        tasks.register_dataset_tasks(SPEC, VOCAB, collection="test", variants=["eval_t0"])


def test_eval_variant_is_hand_computed(names):
    examples = _read("test.tiny_choice:eval", "validation")
    assert len(examples) == 3
    first = examples[0]  # row {"q": "Is 100 odd?", "answer": "no"}, first non-inverted template
    assert _text(first["inputs_pretokenized"]) == "Question: Is 100 odd?\n\nOPTIONS:\n- yes\n- no"
    assert first["targets"].tolist() == [ord(c) + 3 for c in "no"] + [1]
    assert first["inputs"].tolist() == [b + 3 for b in first["inputs_pretokenized"]]
    assert first["template_index"] == 1 and first["num_shots"] == 0
    assert [_text(o) for o in first["options"]] == ["yes", "no"]
    assert (_text(first["answer"]), _text(first["task"]), _text(first["cluster"]),
            _text(first["variant"])) == ("no", "test.tiny_choice:eval", "toy", "eval")


def test_zero_shot_matches_python_render_and_drops_none(names):
    rows = [r for r in _rows(10, 6) if r["q"] != "Is 12 odd?"]
    for variant, with_options in (("zs_opt", True), ("zs_noopt", False)):
        name = f"test.tiny_choice:{variant}"
        examples = _read(name)
        assert len(examples) == 5  # "Is 12 odd?" dropped by to_fields
        for row, ex in zip(rows, examples):
            index = fewshot.choose_template(name, 0, fewshot.example_key(row), 3)
            assert ex["template_index"] == index
            inputs, targets = render(SPEC, index, row, with_options=with_options)
            assert _text(ex["inputs_pretokenized"]) == inputs
            assert _text(ex["targets_pretokenized"]) == targets
            assert ("OPTIONS:" in inputs) == (with_options and index != 0)


def test_slot_few_shot_exemplars_come_from_train_and_exclude_the_example(names):
    # fs_noopt_t1: few-shot template 1 = zero-shot template 1 framed ("Q: ", "A: ", "\n", "\n\n")
    # (fewshot.FEWSHOT_FORMATS[1]), 2 exemplars; every block below is written out by hand.
    train = {r["q"]: r for r in _rows(10, 6) if r["q"] != "Is 12 odd?"}
    for split in ("train", "validation"):
        for ex in _read("test.tiny_choice:fs_noopt_t1", split):
            text = _text(ex["inputs_pretokenized"])
            blocks = text.split("\n\n")
            assert ex["num_shots"] == 2 and len(blocks) == 3 and int(ex["template_index"]) == 1
            own_q = blocks[-1].removeprefix("Q: Question: ").removesuffix("\nA:")
            assert blocks[-1] == f"Q: Question: {own_q}\nA:"
            for block in blocks[:-1]:
                q = block.split("\n")[0].removeprefix("Q: Question: ")
                assert q in train and q != own_q  # a train row, never the example itself
                assert block == f"Q: Question: {q}\nA: {train[q]['answer']}"


def test_training_few_shot_drops_examples_left_without_exemplar():
    # A 1-token budget prunes every exemplar: FLAN drops such examples (filter_zero_shot_in_few_shot)
    # while an eval variant keeps them.
    tasks.register_dataset_tasks(SPEC, VOCAB, collection="tiny_budget",
                                 variants=["fs_noopt_t1", "eval"],
                                 config=tasks.RenderConfig(num_shots=2, max_input_tokens=1))
    assert _read("tiny_budget.tiny_choice:fs_noopt_t1", "validation") == []
    kept = _read("tiny_budget.tiny_choice:eval", "validation")
    assert len(kept) == 3 and {int(e["num_shots"]) for e in kept} == {0}


def test_registration_is_idempotent_and_replaces_on_new_config(names):
    before = len(seqio.TaskRegistry.names())
    task = seqio.get_mixture_or_task("test.tiny_choice:fs_opt")
    assert tasks.register_dataset_tasks(SPEC, VOCAB, collection="test") == names
    assert len(seqio.TaskRegistry.names()) == before
    assert seqio.get_mixture_or_task("test.tiny_choice:fs_opt") is task
    tasks.register_dataset_tasks(SPEC, VOCAB, collection="test2",
                                 config=tasks.RenderConfig(num_shots=1), variants=["fs_opt"])
    assert {int(ex["num_shots"]) for ex in _read("test2.tiny_choice:fs_opt")} == {1}
    tasks.register_dataset_tasks(SPEC, VOCAB, collection="test2",
                                 config=tasks.RenderConfig(num_shots=2), variants=["fs_opt"])
    assert {int(ex["num_shots"]) for ex in _read("test2.tiny_choice:fs_opt")} == {2}


def test_ensure_task_registers_again_when_the_options_differ():
    """ensure_task gives the task as the given (or current default) options define it, never a
    task left registered earlier with other options; identical options reuse the object."""
    name = "flan_mini.mini_parity:zs_opt"
    plain = catalogue.ensure_task(name, VOCAB, config=tasks.RenderConfig())
    assert catalogue.ensure_task(name, VOCAB, config=tasks.RenderConfig()) is plain
    suffixed = catalogue.ensure_task(name, VOCAB, config=tasks.RenderConfig(inputs_suffix="\nANSWER:"))
    assert suffixed is not plain and seqio.get_mixture_or_task(name) is suffixed
    inputs = [_text(ex["inputs_pretokenized"]) for ex in _read(name, split="validation")[:5]]
    assert all(text.endswith("\nANSWER:") for text in inputs)
    assert catalogue.ensure_task(name, VOCAB, config=tasks.RenderConfig()) is not suffixed
    assert not any(_text(ex["inputs_pretokenized"]).endswith("ANSWER:")
                   for ex in _read(name, split="validation")[:5])
    # outside the collections (the caller's own task, no spec to register it from): as it is
    tasks.register_dataset_tasks(SPEC, VOCAB, collection="test4", variants=["eval"])
    own = seqio.get_mixture_or_task("test4.tiny_choice:eval")
    assert catalogue.ensure_task("test4.tiny_choice:eval", seqio.ByteVocabulary(extra_ids=3)) is own


def test_name_clash_with_foreign_task_is_an_error():
    seqio.TaskRegistry.add("test3.tiny_choice:eval", source=seqio.FunctionDataSource(
        lambda split, shuffle_files: tf.data.Dataset.range(1), splits=["train"]),
        preprocessors=[], output_features={})
    with pytest.raises(tasks.FlanJaxError, match="already registered by other code"):
        tasks.register_dataset_tasks(SPEC, VOCAB, collection="test3", variants=["eval"])


def test_template_naming_missing_field_reports_dataset_template_field():
    bad = DatasetSpec(name="bad", cluster="c", sources=SPEC.sources, to_fields=dict,
                      fields=("q", "answer"),
                      templates=(Template("{q}", "{answer}"), Template("{q} {qq}", "{answer}")))
    with pytest.raises(TemplateError, match=r"dataset 'bad', template 1: field 'qq'"):
        tasks.register_dataset_tasks(bad, VOCAB, collection="test")


def test_unknown_names_suggest_close_ones(names):
    with pytest.raises(tasks.UnknownNameError, match=r"did you mean test\.tiny_choice:eval"):
        catalogue.ensure_task("test.tiny_choic:eval", VOCAB)
    with pytest.raises(tasks.UnknownNameError, match="unknown variant 'zs_options'.*zs_opt"):
        tasks.register_dataset_tasks(SPEC, VOCAB, collection="t", variants=["zs_options"])
    with pytest.raises(tasks.UnknownNameError, match="unknown collection"):
        catalogue.collection_datasets("flan2022")


def test_ragged_tfds_style_features_reach_to_fields():
    def to_fields(raw):
        return {"q": raw["q"], "answer": json.dumps(raw["answers"]["text"])}

    spec = DatasetSpec(name="rag", cluster="c", sources=SPEC.sources, to_fields=to_fields,
                       fields=("q", "answer"), templates=(Template("{q}", "{answer}"),))
    renderer = tasks.ExampleRenderer(spec, "t.rag:eval", "eval", spec.templates)
    dataset = tf.data.Dataset.from_tensor_slices({
        "q": [b"a", b"b"],
        "answers": {"text": tf.ragged.constant([[[b"x", b"y"]], [[b"z"], [b"w", b"v"]]])},
        "n": np.array([1, 2], np.int64),
    })
    out = list(tasks.render_preprocessor(renderer, list)(dataset).as_numpy_iterator())
    assert [_text(e["targets"]) for e in out] == ['[["x", "y"]]', '[["z"], ["w", "v"]]']


def test_local_alpaca_task_and_bad_file(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"instruction": "Add.", "input": "2 3", "output": "5"}\n'
                    '{"instruction": "Greet.", "input": "", "output": "Hi"}\n')
    names = catalogue.register_local_tasks("mine", str(path), format="alpaca", vocabulary=VOCAB)
    assert names == [f"local.mine:{v}" for v in ("zs_noopt", "fs_noopt", "fs_noopt_t0",
                                                  "fs_noopt_x", "eval", "eval_t0")]
    got = [(_text(e["inputs_pretokenized"]), _text(e["targets_pretokenized"]))
           for e in _read("local.mine:zs_noopt")]
    assert got == [("Add.\n\n2 3", "5"), ("Greet.", "Hi")]
    # template mix with one template, framed ("", "", "\n", "\n\n"); the task's separator is
    # MIX_SEPARATORS[SHA-256("separator", task, seed) mod 3]
    digest = hashlib.sha256("separator\x1flocal.mine:fs_noopt\x1f0".encode()).digest()
    sep = ("\n", "\n\n", "\n\n\n")[int.from_bytes(digest[:8], "big") % 3]
    shots = [_text(e["inputs_pretokenized"]) for e in _read("local.mine:fs_noopt")]
    assert shots == [f"Greet.\nHi{sep}Add.\n\n2 3\n", f"Add.\n\n2 3\n5{sep}Greet.\n"]
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"instruction": "Add.", "output": "5"}\n{"instruction": "x"}\n')
    catalogue.register_local_tasks("bad", str(bad), format="alpaca", vocabulary=VOCAB)
    with pytest.raises(LocalFileError, match=rf"{bad}:2: missing required field 'output'"):
        _read("local.bad:zs_noopt")


def test_missing_field_at_read_time_names_dataset_template_field():
    # `fields` declares "answer" but to_fields never produces it: caught when rendering.
    src = ProceduralSource(lambda seed, n: [{"q": str(i)} for i in range(n)], {"train": 2},
                           {"train": 1})
    spec = DatasetSpec(name="oops", cluster="c", sources={"oops": src}, to_fields=dict,
                       fields=("q", "answer"), templates=(Template("{q}", "{answer}"),))
    tasks.register_dataset_tasks(spec, VOCAB, collection="test", variants=["eval"])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"dataset 'oops', template 0: field 'answer' is not in the example"):
        _read("test.oops:eval")


def test_many_examples_across_render_batches_keep_order_and_drops():
    n = 2 * tasks.RENDER_BATCH + 11

    def rows(seed, count):
        return [{"q": f"item {i}", "answer": str(i * seed)} for i in range(count)]

    src = ProceduralSource(rows, {"train": n}, {"train": 3})
    spec = DatasetSpec(name="many", cluster="c", sources={"many": src},
                       to_fields=lambda r: None if r["q"].endswith("7") else dict(r),
                       fields=("q", "answer"), templates=(Template("{q}", "{answer}"),))
    tasks.register_dataset_tasks(spec, VOCAB, collection="test", variants=["eval"])
    got = [(_text(e["inputs_pretokenized"]), _text(e["targets_pretokenized"]))
           for e in _read("test.many:eval")]
    expected = [(f"item {i}", str(3 * i)) for i in range(n) if not str(i).endswith("7")]
    assert got == expected


def test_default_vocabulary_registration_is_idempotent():
    pytest.importorskip("flan_jax.data.features.vocab")
    first = catalogue.register_flan_mini_tasks(datasets=["mini_add"])
    task = seqio.get_mixture_or_task(first[0])
    assert catalogue.register_flan_mini_tasks(datasets=["mini_add"]) == first
    assert seqio.get_mixture_or_task(first[0]) is task
    with pytest.raises(tasks.UnknownNameError, match="did you mean mini_add"):
        catalogue.register_flan_mini_tasks(datasets=["mini_ad"])


def _render_flan_mini_sample():
    """A few rendered validation examples of one flan-mini dataset, zs_opt and fs_opt."""
    from flan_jax.data.templates import flan_mini

    spec = next(s for s in flan_mini.all_datasets() if s.has_options)
    out = []
    for name in catalogue.register_flan_mini_tasks(VOCAB, datasets=[spec.name],
                                               variants=["zs_opt", "fs_opt"]):
        ds = seqio.get_mixture_or_task(name).get_dataset(
            None, split="validation", shuffle=False, try_in_mem_cache=False, use_cached=False)
        out += [[name, e["inputs_pretokenized"].decode(), int(e["template_index"])]
                for e in ds.take(6).as_numpy_iterator()]
    return out


_CHILD = """
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from tests.data.tasks import test_tasks
print("RESULT" + json.dumps([hash("flan"), test_tasks._render_flan_mini_sample()]))
"""


@pytest.mark.slow
def test_rendered_tasks_identical_in_a_process_with_another_hash_seed():
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONHASHSEED="4242", CUDA_VISIBLE_DEVICES="")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    proc = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                          text=True, check=True, cwd=root)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    child_hash, child = json.loads(line[len("RESULT"):])
    if child_hash == hash("flan"):  # only if this process also runs with PYTHONHASHSEED=4242
        pytest.skip("parent and child share a hash seed")
    here = _render_flan_mini_sample()
    assert child == here
    assert len(here) == 12 and len({r[2] for r in here}) > 1


def test_every_task_declares_its_metric_and_postprocessor():
    """seqio tasks carry the dataset's metric (seqio.Evaluator conventions) and postprocessor."""
    import seqio

    from flan_jax.data.templates import flan_mini
    from flan_jax.data.tasks import metrics as eval_metrics

    spec = next(s for s in flan_mini.all_datasets() if s.metric == "exact_match")
    names = catalogue.register_flan_mini_tasks(seqio.ByteVocabulary(), datasets=[spec.name])
    task = seqio.get_mixture_or_task(names[0])
    assert task.metric_fns == eval_metrics.metric_fns_for(spec)
    assert task.postprocessor is eval_metrics.postprocessor_for(spec, cot=False)
    # the metric scores a hand-made prediction: one right, one wrong -> 50
    scores = task.metric_fns[0](["12", "7"], ["12", "8"])
    assert list(scores.values())[0] == 50.0


def test_few_shot_pool_is_a_seeded_draw_not_the_first_rows():
    rows = [{"q": f"Is {i} odd?", "choices": ["yes", "no"], "answer": "yes" if i % 2 else "no"}
            for i in range(100)]
    spec = DatasetSpec(name="pool", cluster="toy",
                       sources={"pool": ProceduralSource(lambda seed, n: rows[:n], {"train": 100},
                                                         {"train": 0})},
                       to_fields=dict, fields=("q", "choices", "answer"),
                       templates=SPEC.templates[1:], options_field="choices")
    source = tasks.make_data_source(spec.sources["pool"], dataset="pool")
    for seed in (0, 1):
        pool = tasks._pool_loader(source, "train", spec, 10, seed)()
        # by hand: SHA-256("pool", seed, key) over the first 4 * 10 rows, smallest 10
        def pool_hash(row):
            key = hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()
            digest = hashlib.sha256(f"pool\x1f{seed}\x1f{key}".encode()).digest()
            return int.from_bytes(digest[:8], "big")
        expected = sorted(rows[:40], key=pool_hash)[:10]
        assert [f for _, f in pool] == expected
        assert [f for _, f in pool] != rows[:10]
