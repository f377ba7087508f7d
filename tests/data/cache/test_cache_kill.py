"""`flan-jax cache` SIGKILLed mid-write: the task being written has no manifest (a run refuses
it in one line and never reads its files), finished tasks keep theirs; writing again resumes
(finished tasks untouched, stale ones rewritten) and ends byte-identical to an uninterrupted
cache. A cached local file edited since is a stale cache, named."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cache_kill_worker
from cache_kill_worker import MAX_EXAMPLES, TASKS

HERE = Path(__file__).parent


def worker(cache_dir, kill):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(HERE / "cache_kill_worker.py"), str(cache_dir), str(kill)],
                          capture_output=True, text=True, timeout=600, env=env)


def files(cache_dir):
    root = Path(cache_dir)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(".tmp")}


@pytest.mark.slow
def test_a_killed_cache_write_resumes_to_the_same_files(tmp_path):
    from flan_jax.data.cache import cached_pipeline, writer

    cache_kill_worker.write(tmp_path / "ref")
    want = files(tmp_path / "ref")
    run = tmp_path / "run"
    cache_kill_worker.write(run, max_examples=MAX_EXAMPLES // 2)  # an older, smaller cache to rewrite

    killed = worker(run, MAX_EXAMPLES + 7)  # inside the second task's records
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert writer.load_manifest(run, TASKS[0])["max_examples"] == MAX_EXAMPLES  # rewritten, complete
    assert writer.load_manifest(run, TASKS[1]) is None  # being rewritten: no manifest, old or new
    with pytest.raises(writer.StaleCacheError, match=f"task '{TASKS[1]}' is not cached"):
        cached_pipeline.stream_spec(str(run), {TASKS[0]: 0.5, TASKS[1]: 0.5}, "train")
    first = {p: p.stat().st_mtime_ns for p in writer.task_dir(run, TASKS[0]).iterdir()}

    done = worker(run, 0)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in writer.task_dir(run, TASKS[0]).iterdir()} == first  # kept
    assert files(run) == want


@pytest.mark.slow
def test_a_cached_local_file_edited_since_is_stale(tmp_path):
    from flan_jax.data.cache import cached_pipeline, writer
    from flan_jax.data.tasks import catalogue

    data = tmp_path / "rows_train.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"Say {i}.", "input": "", "output": str(i)}) + "\n"
                            for i in range(5)))
    (task, *_) = catalogue.register_local_tasks("cache_edit", str(tmp_path / "rows_{split}.jsonl"),
                                                format="alpaca", splits=("train",))
    writer.write_task(task, str(tmp_path / "cache"))
    cached_pipeline.stream_spec(str(tmp_path / "cache"), {task: 1.0}, "train")  # current: fine
    data.write_text(data.read_text().replace("Say 3.", "Say 7."))
    with pytest.raises(writer.StaleCacheError, match=rf"task '{task}' is stale: file {data} changed"):
        cached_pipeline.stream_spec(str(tmp_path / "cache"), {task: 1.0}, "train")
