"""Pipeline: resume position, sharding, determinism, stats and bad arguments."""
import numpy as np
import pytest

from flan_jax.data.features import packing, pipeline
from flan_jax.errors import FlanJaxError

LENGTHS = {"inputs": 12, "targets": 6}


def _examples(n, seed=0):
    rng = np.random.default_rng(seed)
    return [{"inputs": rng.integers(2, 99, rng.integers(1, 16)).astype(np.int32),
             "targets": np.r_[rng.integers(2, 99, rng.integers(0, 7)), 1].astype(np.int32)}
            for _ in range(n)]


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


@pytest.mark.parametrize("fmt, pack, packer", [
    ("decoder", True, "best_fit"), ("enc_dec", True, "best_fit"), ("prefix_lm", True, "greedy"),
    ("enc_dec", False, "best_fit")])
def test_start_batch_equals_skipping(fmt, pack, packer):
    examples = _examples(300)
    kwargs = dict(pack=pack, packer=packer, buffer_size=32, max_open_rows=4)
    full = list(pipeline.batches(examples, fmt, LENGTHS, 4, **kwargs))
    assert len(full) > 8
    for n in (0, 1, 5, len(full)):
        resumed = pipeline.batches(examples, fmt, LENGTHS, 4, start_batch=n, **kwargs)
        _same(list(resumed), full[n:])
        assert resumed.stats.batches == len(full)


def test_every_example_arrives_once_and_unpacks():
    examples = _examples(200, seed=1)
    out = list(pipeline.batches(examples, "prefix_lm", {"inputs": 16, "targets": 8}, 3, drop_remainder=False))
    got = [ex for b in out for r in range(3) for ex in packing.unpack({k: v[r] for k, v in b.items()}, "prefix_lm")]
    key = lambda e: (tuple(e["inputs"].tolist()), tuple(e["targets"].tolist()))  # noqa: E731
    assert sorted(map(key, got)) == sorted(map(key, examples))


def test_iterable_shards_partition_the_examples():
    examples = [{"inputs": [i + 2], "targets": [1]} for i in range(10)]
    seen = []
    for shard in range(3):
        for b in pipeline.batches(examples, "enc_dec", {"inputs": 1, "targets": 1}, 1, pack=False,
                                  shard_index=shard, num_shards=3):
            seen.append(int(b["encoder_input_tokens"][0, 0]))
    assert sorted(seen) == list(range(2, 12))


def test_stats_by_hand():
    examples = [
        {"inputs": [5, 6, 7], "targets": [8, 1]},         # 5 tokens
        {"inputs": [5] * 20, "targets": [8, 1]},          # inputs over 12: truncated to 12 -> 14
        {"inputs": [5], "targets": [8] * 9 + [1]},        # targets over 6: truncated -> 7
        {"targets": [4, 1], "loss_weights": [0, 0]},      # zero loss
    ]
    it = pipeline.batches(examples, "decoder", LENGTHS, 1, pack=False)
    out = list(it)
    s = it.stats
    assert (s.examples, s.truncated, s.dropped_overlong, s.zero_loss, s.rows) == (4, 2, 0, 1, 3)
    assert s.decoder_tokens == 5 + 14 + 7 and s.decoder_slots == 3 * 18
    assert s.non_pad_fraction == pytest.approx(26 / 54) and s.row_fill == pytest.approx(26 / 54)
    np.testing.assert_array_equal(out[2]["decoder_loss_weights"][0], [0] + [1] * 6 + [0] * 11)
    it = pipeline.batches(examples, "decoder", LENGTHS, 1, pack=False, overlong="drop")
    assert len(list(it)) == 1 and it.stats.dropped_overlong == 2 and it.stats.truncated == 0


def test_row_fill_counts_the_fuller_side_of_each_row():
    examples = [{"inputs": [5, 6, 7], "targets": [8, 1]}, {"inputs": [5] * 11, "targets": [1]}]
    it = pipeline.batches(examples, "enc_dec", LENGTHS, 1, pack=False)
    list(it)
    # row 1: encoder 3/12, decoder 2/6 -> 1/3; row 2: encoder 11/12, decoder 1/6 -> 11/12
    assert it.stats.row_fill == pytest.approx((1 / 3 + 11 / 12) / 2)
    assert it.stats.non_pad_fraction == pytest.approx((3 + 2 + 11 + 1) / 36)


def test_last_batch_padded_with_empty_rows():
    examples = _examples(5)
    out = list(pipeline.batches(examples, "decoder", LENGTHS, 4, pack=False, drop_remainder=False))
    assert len(out) == 2 and out[1]["decoder_target_tokens"].shape == (4, 18)
    assert not out[1]["decoder_target_tokens"][1:].any() and not out[1]["decoder_loss_weights"][1:].any()
    assert len(list(pipeline.batches(examples, "decoder", LENGTHS, 4, pack=False))) == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(format_name="t5"), "unknown batch format 't5'"),
    (dict(lengths={"inputs": 0, "targets": 4}), "'inputs' must be a positive int"),
    (dict(batch_size=0), "batch_size must be an int >= 1"),
    (dict(shard_index=2, num_shards=2), "shard_index 2 is not below num_shards 2"),
    (dict(start_batch=-1), "start_batch"),
    (dict(packer="first_fit"), "unknown packer"),
    (dict(overlong="wrap"), "unknown overlong policy"),
])
def test_bad_arguments_raise(kwargs, match):
    args = dict(source=_examples(3), format_name="decoder", lengths=LENGTHS, batch_size=2) | kwargs
    with pytest.raises(FlanJaxError, match=match):
        pipeline.batches(**args)


def test_example_without_targets_names_its_index():
    examples = _examples(3) + [{"inputs": [4, 5]}]
    with pytest.raises(FlanJaxError, match="example 3: example has no 'targets'"):
        list(pipeline.batches(examples, "decoder", LENGTHS, 2))


# --- seqio source -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seqio_task():
    import seqio
    import tensorflow as tf

    name = "flan_jax_test_pipeline_task"

    def dataset_fn(split, shuffle_files, seed=None):
        rows = _examples(120, seed=7)

        def gen():
            for r in rows:
                yield {"inputs": r["inputs"], "targets": r["targets"][:-1]}  # EOS added by the task

        spec = {k: tf.TensorSpec([None], tf.int32) for k in ("inputs", "targets")}
        return tf.data.Dataset.from_generator(gen, output_signature=spec)

    vocab = seqio.PassThroughVocabulary(128, eos_id=1)
    for task in (name, name + "_b"):
        seqio.TaskRegistry.add(
            task,
            source=seqio.FunctionDataSource(dataset_fn, splits=["train"]),
            preprocessors=[seqio.preprocessors.append_eos],
            output_features={"inputs": seqio.Feature(vocab, add_eos=False),
                             "targets": seqio.Feature(vocab, add_eos=True)})
    seqio.MixtureRegistry.add(name + "_mix", [(name, 1.0), (name + "_b", 2.0)])
    yield name
    seqio.MixtureRegistry.remove(name + "_mix")
    seqio.TaskRegistry.remove(name)
    seqio.TaskRegistry.remove(name + "_b")


@pytest.mark.slow
def test_seqio_source_determinism_resume_and_shards(seqio_task):
    run = lambda **kw: list(pipeline.batches(seqio_task, "enc_dec", LENGTHS, 2, seed=3, **kw))  # noqa: E731
    first = run()
    _same(first, run())
    _same(run(start_batch=4), first[4:])
    assert not all(np.array_equal(a["encoder_input_tokens"], b["encoder_input_tokens"])
                   for a, b in zip(first, run(shuffle=False)))
    # every example lands in exactly one of 2 shards
    def tokens(shard):
        it = pipeline.batches(seqio_task, "enc_dec", LENGTHS, 1, pack=False, shard_index=shard,
                              num_shards=2, shuffle=False)
        return [tuple(b["encoder_input_tokens"][0][b["encoder_input_tokens"][0] > 0]) for b in it]
    both = tokens(0) + tokens(1)
    expected = [tuple(e["inputs"][:12]) for e in _examples(120, seed=7)]
    assert sorted(both) == sorted(expected) and len(tokens(0)) == 60


@pytest.mark.slow
def test_seqio_mixture_is_deterministic_and_resumable(seqio_task):
    def run(start_batch=0, seed=11):
        it = pipeline.batches(seqio_task + "_mix", "decoder", LENGTHS, 2, seed=seed, num_epochs=None,
                              start_batch=start_batch)
        return [next(it) for _ in range(6 - start_batch)]
    first = run()
    _same(first, run())
    _same(first[3:], run(start_batch=3))
    assert not all(np.array_equal(a["decoder_target_tokens"], b["decoder_target_tokens"])
                   for a, b in zip(first, run(seed=12)))


def test_unknown_seqio_name_raises():
    with pytest.raises(FlanJaxError, match="no seqio task or mixture named 'no_such_task'"):
        pipeline.batches("no_such_task", "decoder", LENGTHS, 2)


# --- the models read our batches: packed rows compute what each example computes alone --------

def _tiny_model(fmt):
    if fmt == "enc_dec":
        from flan_jax.models.t5 import T5, T5Config

        return T5(T5Config(vocab_size=128, emb_dim=32, num_heads=2, head_dim=16, mlp_dim=64,
                           num_encoder_layers=2, num_decoder_layers=2))
    from flan_jax.models.decoder import Decoder, DecoderConfig

    return Decoder(DecoderConfig(vocab_size=128, emb_dim=32, num_heads=2, num_kv_heads=1, head_dim=16,
                                 mlp_dim=64, num_layers=2, prefix_lm=fmt == "prefix_lm"))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["enc_dec", "decoder", "prefix_lm"])
def test_model_logits_packed_equal_unpacked(fmt):
    import jax

    examples = _examples(10, seed=5)
    lengths = {"inputs": 16, "targets": 8}
    packed = list(pipeline.batches(examples, fmt, lengths, 4, drop_remainder=False))
    alone = next(pipeline.batches(examples, fmt, lengths, len(examples), pack=False))
    assert sum((b["decoder_segment_ids"].max(axis=1)).sum() for b in packed) == len(examples)
    assert any(b["decoder_segment_ids"].max() > 1 for b in packed)
    model = _tiny_model(fmt)
    params = model.init(jax.random.PRNGKey(0), packed[0])["params"]
    apply = lambda batch: model.apply({"params": params}, batch)  # noqa: E731
    alone_logits = np.asarray(apply(alone))
    def key(batch, r, seg_of_row, s):  # the example's own tokens identify it
        dec = batch["decoder_target_tokens"][r][seg_of_row == s]
        if fmt != "enc_dec":
            return tuple(dec)
        enc_seg = batch.get("encoder_segment_ids", (batch["encoder_input_tokens"] > 0).astype(int))[r]
        return tuple(dec), tuple(batch["encoder_input_tokens"][r][enc_seg == s])

    alone_seg = (alone["decoder_target_tokens"] > 0).astype(int)
    index = {key(alone, j, alone_seg[j], 1): j for j in range(len(examples))}
    assert len(index) == len(examples)
    for batch in packed:
        logits = np.asarray(apply(batch))
        for r, seg in enumerate(batch["decoder_segment_ids"]):
            for s in range(1, seg.max() + 1):
                j = index[key(batch, r, seg, s)]
                np.testing.assert_allclose(logits[r][seg == s], alone_logits[j][: (seg == s).sum()],
                                           atol=2e-5, rtol=1e-4)


def test_overlong_targets_keep_eos_as_the_tasks_seqio_output_does():
    """The registered flan-mini task, trimmed by seqio itself (append_eos_after_trim puts EOS
    after the cut: e.g. [415, 928, 1]) is the reference; the pipeline's rows must agree."""
    from flan_jax.data.tasks import catalogue

    name = "flan_mini.mini_date_format:zs_noopt"
    task = catalogue.ensure_task(name)
    lengths = {"inputs": 64, "targets": 3}
    want = [ex["targets"] for ex in task.get_dataset(lengths, split="validation", shuffle=False).take(8)
            .as_numpy_iterator()]
    assert any(len(t) == 3 for t in want) and all(t[-1] == 1 for t in want)
    it = pipeline.batches(name, "enc_dec", lengths, 1, pack=False, split="validation", shuffle=False)
    got = [b["decoder_target_tokens"][0] for b, _ in zip(it, range(8))]
    for w, g in zip(want, got):
        np.testing.assert_array_equal(g[:len(w)], w)


def test_iterable_source_eos_after_trim_by_hand():
    ex = [{"inputs": [7], "targets": [415, 928, 323, 1]}]
    kept = next(pipeline.batches(ex, "enc_dec", {"inputs": 2, "targets": 3}, 1, pack=False, eos_id=1))
    np.testing.assert_array_equal(kept["decoder_target_tokens"][0], [415, 928, 1])
    plain = next(pipeline.batches(ex, "enc_dec", {"inputs": 2, "targets": 3}, 1, pack=False))
    np.testing.assert_array_equal(plain["decoder_target_tokens"][0], [415, 928, 323])


def test_rows_do_not_depend_on_the_batch_size():
    """Why a resumed run may change only the batch size (train.allow_data_change): the row
    stream is the same, so 2 batches of 4 rows end where 1 batch of 8 does (row 8)."""
    examples = _examples(200)
    fours = list(pipeline.batches(examples, "decoder", LENGTHS, 4))
    eights = list(pipeline.batches(examples, "decoder", LENGTHS, 8, start_batch=1))
    for key in eights[0]:
        np.testing.assert_array_equal(eights[0][key], np.concatenate([fours[2][key], fours[3][key]]))
