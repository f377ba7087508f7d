"""The task cache and its Grain reader: records equal seqio's examples, stale caches are refused,
rates hold at read time, resume is exact and constant-time, workers do not change batches."""
import json

import numpy as np
import pytest

from flan_jax.data.cache import writer as cache, cached_pipeline
from flan_jax.errors import FlanJaxError

TASKS = ("flan_mini.mini_add:zs_noopt", "flan_mini.mini_vowel_start:zs_opt")
LENGTHS = (("inputs", 48), ("targets", 8))


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    from flan_jax.data.tasks import catalogue
    # registered with the default vocabulary here: another test file in this process may have
    # registered the same tasks with a test vocabulary
    from flan_jax.data.features import vocab
    catalogue.register_flan_mini_tasks(vocab.load_vocabulary(vocab.default_vocabulary_path()),
                                   datasets=["mini_add", "mini_vowel_start"])
    out = tmp_path_factory.mktemp("cache")
    manifests = cache.cache_tasks(TASKS, str(out), splits=("train", "validation"), max_examples=300)
    return out, manifests


def test_encode_decode_worked_example():
    data = cache.encode_example({"inputs": [7, 8], "targets": [3, 1]})
    assert len(data) == 4 + 2 * (5 + 8)
    back = cache.decode_example(data)
    assert {k: v.tolist() for k, v in back.items()} == {"inputs": [7, 8], "targets": [3, 1]}
    chat = cache.decode_example(cache.encode_example({"targets": [5, 1], "loss_weights": [1, 1]}))
    assert sorted(chat) == ["loss_weights", "targets"]


def test_records_equal_the_seqio_task(cached):
    import seqio
    from array_record.python import array_record_module as ar
    out, manifests = cached
    m = manifests[0]
    assert m["task"] == TASKS[0] and m["splits"]["train"]["num_examples"] == 300
    ds = seqio.get_mixture_or_task(TASKS[0]).get_dataset(None, split="train", shuffle=False, use_cached=False)
    want = [ex for _, ex in zip(range(300), ds.as_numpy_iterator())]
    reader = ar.ArrayRecordReader(str(cache.task_dir(out, TASKS[0]) / m["splits"]["train"]["files"][0]))
    got = [cache.decode_example(r) for r in reader.read_all()]
    reader.close()
    assert len(got) == 300
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g["inputs"], w["inputs"])
        np.testing.assert_array_equal(g["targets"], w["targets"])
    assert m["splits"]["train"]["max_targets"] == max(len(w["targets"]) for w in want)


@pytest.mark.parametrize("field", ["vocabulary", "templates"])
def test_a_stale_manifest_is_refused_naming_the_field(cached, tmp_path, field):
    import seqio
    out, _ = cached
    manifest = cache.load_manifest(out, TASKS[0])
    manifest[field] = "0" * 64
    vocab = seqio.get_mixture_or_task(TASKS[0]).output_features["targets"].vocabulary
    with pytest.raises(cache.StaleCacheError, match=f"field '{field}' differs"):
        cache.check_manifest(manifest, task_name=TASKS[0], vocabulary=vocab, split="train", where="x")
    with pytest.raises(cache.StaleCacheError, match="no split 'test'"):
        cache.check_manifest(cache.load_manifest(out, TASKS[0]), task_name=TASKS[0], vocabulary=vocab,
                             split="test", where="x")


def test_missing_and_corrupt_caches_are_errors(cached, tmp_path):
    with pytest.raises(cache.StaleCacheError, match="is not cached"):
        cached_pipeline.stream_spec(str(tmp_path), {TASKS[0]: 1.0}, "train")
    bad = cache.task_dir(tmp_path, TASKS[0])
    bad.mkdir(parents=True)
    (bad / "manifest.json").write_text("{oops")
    with pytest.raises(cache.StaleCacheError, match="not a readable manifest"):
        cached_pipeline.stream_spec(str(tmp_path), {TASKS[0]: 1.0}, "train")


def _spec(out, rates=(0.75, 0.25), pack=True, block_size=64, seed=0):
    stream = cached_pipeline.stream_spec(str(out), dict(zip(TASKS, rates)), "train", seed=seed)
    return cached_pipeline.BlockSpec(stream, "decoder", LENGTHS, pack=pack, block_size=block_size)


def test_rates_hold_at_read_time_and_epochs_cover_each_task(cached):
    out, _ = cached
    stream = _spec(out).stream
    first = {tuple(r.tolist()) for r in _task_targets(out, TASKS[0])}
    blocks = [cached_pipeline.mixed_examples(stream, b, 50) for b in range(24)]  # 1200 examples
    n = sum(len(b) for b in blocks)
    from_first = [ex for b in blocks for ex in b if tuple(ex["targets"].tolist()) in first]
    assert n == 1200 and len(from_first) == 900  # floor(24 * 50 * 0.75): exact over blocks
    # 900 examples of a 300-example task = 3 epochs, each a permutation of the whole task
    firsts = [tuple(ex["targets"].tolist()) for ex in from_first]
    assert all(set(firsts[i * 300:(i + 1) * 300]) == first for i in range(3))


def _task_targets(out, task):
    from array_record.python import array_record_module as ar
    m = cache.load_manifest(out, task)
    reader = ar.ArrayRecordReader(str(cache.task_dir(out, task) / m["splits"]["train"]["files"][0]))
    rows = [cache.decode_example(r)["targets"] for r in reader.read_all()]
    reader.close()
    return rows


def test_packed_batches_hold_every_example_of_a_block_once(cached):
    out, _ = cached
    spec = _spec(out, block_size=40)
    rows, counts = cached_pipeline.block_rows(spec, 3)
    want = sorted(tuple(ex["targets"].tolist()) for ex in cached_pipeline.mixed_examples(spec.stream, 3, 40))
    got = sorted(tuple(seg.decoder[seg.weights.astype(bool)].tolist()) for row in rows for seg in row)
    assert got == want and counts["examples"] == 40
    assert all(sum(s.decoder.size for s in row) <= 56 for row in rows)


def test_resume_at_any_position_is_exact_and_constant_time(cached):
    out, _ = cached
    spec = _spec(out, block_size=32)
    it = cached_pipeline.CachedBatches(spec, batch_size=4)
    run = [next(it) for _ in range(12)]
    state = None
    it2 = cached_pipeline.CachedBatches(spec, batch_size=4)
    for _ in range(5):
        next(it2)
    state = it2.state()
    resumed = cached_pipeline.CachedBatches(spec, batch_size=4, state=json.loads(json.dumps(state)))
    for want in run[5:]:
        got = next(resumed)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])
    # far into the stream (block 10**7 = 3.2e8 examples in): one block is read, none before it
    # (bench/pipeline.py prints the resume time; no timing is asserted here)
    far = {"block": 10 ** 7, "row": 1}
    a = next(cached_pipeline.CachedBatches(spec, batch_size=4, state=far))
    b_it = cached_pipeline.CachedBatches(spec, batch_size=4, state={"block": 10 ** 7, "row": 0})
    rows = cached_pipeline.block_rows(spec, 10 ** 7)[0]
    assert len(rows) > 5
    first = next(b_it)
    np.testing.assert_array_equal(a["decoder_target_tokens"][:3], first["decoder_target_tokens"][1:4])


@pytest.mark.slow
def test_worker_processes_do_not_change_the_batches(cached):
    out, _ = cached
    spec = _spec(out, block_size=32)
    serial = cached_pipeline.CachedBatches(spec, batch_size=4)
    parallel = cached_pipeline.CachedBatches(spec, batch_size=4, workers=2)
    try:
        for _ in range(20):
            a, b = next(serial), next(parallel)
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])
    finally:
        parallel.close()


def test_unpacked_rows_hold_one_example_each(cached):
    out, _ = cached
    batch = next(cached_pipeline.CachedBatches(_spec(out, pack=False), batch_size=6))
    assert "decoder_segment_ids" not in batch and batch["decoder_target_tokens"].shape == (6, 56)


def test_bad_batch_size_is_refused(cached):
    out, _ = cached
    with pytest.raises(FlanJaxError, match="batch_size"):
        cached_pipeline.CachedBatches(_spec(out), batch_size=0)


@pytest.mark.slow
def test_beam_job_writes_the_same_files_as_the_process_pool(cached, tmp_path):
    pytest.importorskip("apache_beam")
    import functools
    from flan_jax.data.cache import beam_cache
    from flan_jax.commands import cache as cache_cmd
    out, manifests = cached
    beam_out = tmp_path / "beam"
    got = beam_cache.run_beam(TASKS, str(beam_out), splits=("train", "validation"), max_examples=300,
                              register=functools.partial(cache_cmd.register, TASKS[0]))
    assert got == manifests
    for task in TASKS:
        for f in sorted(p.name for p in cache.task_dir(out, task).iterdir()):
            assert (cache.task_dir(beam_out, task) / f).read_bytes() == (cache.task_dir(out, task) / f).read_bytes()


@pytest.mark.slow
def test_cache_command_with_worker_processes(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "c"
    proc = subprocess.run([sys.executable, "-m", "flan_jax.cli", "cache", "flan_mini_all", "--out", str(out),
                           "--workers", "2", "--max_examples", "20"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifests = [json.loads(p.read_text()) for p in out.glob("*/manifest.json")]
    assert len(manifests) > 10 and all(m["splits"]["train"]["num_examples"] == 20 for m in manifests)
    bad = subprocess.run([sys.executable, "-m", "flan_jax.cli", "cache", "flan_mini_all", "--out", str(out),
                          "--workers", "0"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--workers" in bad.stderr and "Traceback" not in bad.stderr


def test_mixture_command_marks_cached_tasks(cached, capsys):
    import argparse
    from flan_jax.commands import mixture as mixture_cmd
    out, _ = cached
    parser = argparse.ArgumentParser()
    mixture_cmd.add_arguments(parser)
    mixture_cmd.run(parser.parse_args(["flan_mini_all", "--cache", str(out), "--json"]))
    report = json.loads(capsys.readouterr().out)
    marks = {t["task"]: t["cached"] for t in report["tasks"]}
    assert {t for t, c in marks.items() if c} == set(TASKS)
    assert len(marks) > len(TASKS)


def test_small_and_batched_reads_return_the_same_records(cached, monkeypatch):
    """Few keys are read one by one (Grain's batched read starts a thread pool per call); the
    records equal ArrayRecord's own reader's, in the order asked, either way."""
    import grain
    from array_record.python import array_record_module as ar
    out, manifests = cached
    path = str(cache.task_dir(out, TASKS[1]) / manifests[1]["splits"]["train"]["files"][0])
    reader = ar.ArrayRecordReader(path)
    every = reader.read_all()
    reader.close()
    source = grain.sources.ArrayRecordDataSource([path])
    keys = [17, 3, 299, 3, 0]
    assert list(cached_pipeline._read(source, keys)) == [every[k] for k in keys]
    monkeypatch.setattr(cached_pipeline, "_BATCHED_READ_MIN", 2)
    assert list(cached_pipeline._read(source, keys)) == [every[k] for k in keys]
