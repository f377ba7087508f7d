"""A LoRA run SIGKILLed mid-run, and again inside the final adapter write, then restarted, ends
with the adapters of an uninterrupted run bit for bit; a half-written adapter folder is never
left under its final name."""
import os
import subprocess
import sys

import numpy as np
import pytest

import lora_kill_worker

HERE = os.path.dirname(__file__)


def worker(model_dir, steps, kill, out):
    cache = os.path.join(os.path.dirname(str(model_dir)), "jax_cache")  # the step compiles once
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]),
               JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return subprocess.run([sys.executable, os.path.join(HERE, "lora_kill_worker.py"), str(model_dir), str(steps),
                           kill, str(out)], capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_killed_lora_runs_resume_to_the_same_adapters(tmp_path):
    ref = lora_kill_worker.run(str(tmp_path / "ref"), 5)
    want = lora_kill_worker.adapters(str(tmp_path / "ref"), ref.step)

    run = tmp_path / "run"
    killed = worker(run, 5, "step:3", tmp_path / "x.npz")  # between checkpoints 2 and 4
    assert killed.returncode == -9, killed.stderr[-2000:]
    killed = worker(run, 5, "adapters", tmp_path / "x.npz")  # after the last checkpoint, mid adapter write
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (run / "adapters" / "5").exists()  # only a hidden temporary folder
    assert (run / "checkpoints" / "5").is_dir()
    done = worker(run, 5, "none", tmp_path / "out.npz")  # nothing to train: the adapters are written
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    assert sorted(got.files) == sorted(want)
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
