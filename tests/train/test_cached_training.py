"""train() on a cached mixture: a run killed with SIGKILL and resumed, with another number of
packing worker processes, equals an uninterrupted one (the checkpoint stores the cache's
(block, row) position per host; resuming re-packs one block)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent


def _worker(model_dir, steps, kill_at, cache_dir, out, workers=0):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(HERE / "cached_resume_worker.py"), str(model_dir), str(steps),
                           str(kill_at), str(cache_dir), str(out), str(workers)], capture_output=True, text=True,
                          timeout=900, env=env)


def _pure_default_vocabulary():
    """The project's default vocabulary whatever gin bindings earlier tests in this process left
    (the worker subprocesses register their tasks with it)."""
    from flan_jax.data.features import vocab
    return vocab.load_vocabulary(vocab.default_vocabulary_path())


@pytest.mark.slow
def test_killed_cached_run_resumes_bit_identical_far_into_the_stream(tmp_path):
    """A 3-step run's checkpoint is moved to block 10**6 of the stream (1.6e7 examples in, as a
    long run would be); from there an uninterrupted run and a run SIGKILLed after step 7 and
    resumed with 1 packing worker end with the same parameters."""
    import json
    import shutil
    from flan_jax.data.cache import writer as cache
    from flan_jax.data.tasks import catalogue
    from flan_jax.train.checkpoint import Checkpointer
    from cached_resume_worker import TASK

    catalogue.register_flan_mini_tasks(_pure_default_vocabulary(), datasets=["mini_add"])
    cache.write_task(TASK, str(tmp_path / "cache"), max_examples=200)
    seed = _worker(tmp_path / "ref", 3, 0, tmp_path / "cache", tmp_path / "seed.npz")
    assert seed.returncode == 0, seed.stderr[-3000:]
    data = tmp_path / "ref" / "checkpoints" / "3" / "data" / "metadata"
    position = json.loads(data.read_text())
    assert position["cache_state"] == {"num_hosts": 1, "hosts": [position["cache_state"]["hosts"][0]]}
    position["cache_state"]["hosts"][0] = {"block": 10 ** 6, "row": 0}
    data.write_text(json.dumps(position))
    shutil.copytree(tmp_path / "ref", tmp_path / "run")

    ref = _worker(tmp_path / "ref", 9, 0, tmp_path / "cache", tmp_path / "ref.npz")
    assert ref.returncode == 0, ref.stderr[-3000:]
    killed = _worker(tmp_path / "run", 9, 7, tmp_path / "cache", tmp_path / "x.npz")
    assert killed.returncode == -9, killed.stderr[-3000:]
    done = _worker(tmp_path / "run", 9, 0, tmp_path / "cache", tmp_path / "out.npz", workers=1)
    assert done.returncode == 0, done.stderr[-3000:]
    want, got = np.load(tmp_path / "ref.npz"), np.load(tmp_path / "out.npz")
    assert sorted(want.files) == sorted(got.files)
    for key in want.files:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    # both continued from the far position (16-example blocks pack to a few rows each)
    for run in ("ref", "run"):
        end = Checkpointer(str(tmp_path / run / "checkpoints")).data_position(9)["cache_state"]
        assert 10 ** 6 < end["hosts"][0]["block"] < 10 ** 6 + 48


def test_a_stale_cache_stops_training_naming_the_field(tmp_path):
    """A cache written with another vocabulary is refused before any batch is read."""
    import json
    from flan_jax.data.cache import writer as cache
    from flan_jax.data.tasks import catalogue
    from flan_jax.data.cache.cached_pipeline import stream_spec
    from cached_resume_worker import TASK

    catalogue.register_flan_mini_tasks(_pure_default_vocabulary(), datasets=["mini_add"])
    cache.write_task(TASK, str(tmp_path), max_examples=8)
    path = cache.task_dir(tmp_path, TASK) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["vocabulary"] = "f" * 64
    path.write_text(json.dumps(manifest))
    with pytest.raises(cache.StaleCacheError, match="field 'vocabulary' differs"):
        stream_spec(str(tmp_path), {TASK: 1.0}, "train")
