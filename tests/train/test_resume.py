"""A run SIGKILLed between checkpoints (and right after a checkpoint write started) and
restarted ends bit-identical to an uninterrupted run."""
import os
import subprocess
import sys

import numpy as np
import pytest

import resume_worker

HERE = os.path.dirname(__file__)


def worker(model_dir, num_steps, kill_at, out):
    # A persistent compilation cache shared by the workers: the step compiles once, not three
    # times (loading a cached executable runs the very same code, so bit-identity is unaffected).
    cache = os.path.join(os.path.dirname(str(model_dir)), "jax_cache")
    env = dict(os.environ, PYTHONPATH=HERE, JAX_COMPILATION_CACHE_DIR=cache,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return subprocess.run([sys.executable, os.path.join(HERE, "resume_worker.py"), str(model_dir),
                           str(num_steps), str(kill_at), str(out)],
                          capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_killed_and_restarted_run_is_bit_identical(tmp_path):
    steps = 17
    ref = resume_worker.run(str(tmp_path / "ref"), steps)
    want = resume_worker.flat({"params": ref.state.params, "opt_state": ref.state.opt_state})

    run_dir = tmp_path / "run"
    killed = worker(run_dir, steps, 13, tmp_path / "x.npz")  # between checkpoints 10 and 15
    assert killed.returncode == -9, killed.stderr[-2000:]
    complete = [int(d) for d in os.listdir(run_dir / "checkpoints") if d.isdigit()]
    # 10 (or 5, or none, when a slow machine was still writing them) -- never more than 13
    assert all(s <= 10 for s in complete), os.listdir(run_dir / "checkpoints")
    killed = worker(run_dir, steps, 15, tmp_path / "x.npz")  # right after save(15) began: mid-write
    assert killed.returncode == -9, killed.stderr[-2000:]
    done = worker(run_dir, steps, 0, tmp_path / "out.npz")
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    assert int(got["consumed"]) == steps
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
